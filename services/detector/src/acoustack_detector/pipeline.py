"""Detection of one recording, through the detection template: filters → model → cleaners →
store, then the message builders → outbox.

Domain logic only: the Celery task and the CLI call it. The output and its messages are stored in
one storage call, idempotent per (recording, model): the template's store takes the output, its
message store the messages, and both go to storage together once the template has returned
(nothing, if it raised), so a redelivered task stores nothing twice.

``Detector`` makes the pipeline the program's `detection` section asks for (model, threshold,
message threshold) at each task, so `acoustack config set` acts at the next recording.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from acoustack import convert, prometheus, schema
from acoustack.clients import StoreClient
from acoustack.components import (
    DetectionThresholdMessageBuilder,
    FullModelOutputMessageBuilder,
    ThresholdDetectionCleaner,
)
from acoustack.components.types import MessageBuilder, Model, ModelOutputCleaner, ProcessingFilter
from acoustack.program_config import DetectionConfig
from acoustack.tasks import generate_detection_task
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.local_model import LocalModel
from acoustack_detector.remote_model import RemoteModel

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already stored"
    FILTERED_OUT = "filtered out"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    recording_id: uuid.UUID
    model_output_id: uuid.UUID | None = None
    detections: int = 0
    messages: int = 0


class OutputWithMessages:
    """The template's store and message store at once: what it stores is sent to storage in one
    call by ``commit``."""

    def __init__(self, store: StoreClient) -> None:
        self.store = store
        self.output: schema.ModelOutput | None = None
        self.messages: list[schema.Message] = []

    def store_model_output(self, model_output: schema.ModelOutput) -> None:
        self.output = model_output

    def store_message(self, message: schema.Message) -> None:
        self.messages.append(message)

    def commit(self):
        assert self.output is not None, "the template stored no output"
        return self.store.store_model_output(self.output, self.messages)


class TimedModel:
    """The model, its run timed for acoustack_inference_seconds."""

    def __init__(self, model: Model) -> None:
        self.model = model

    name = property(lambda self: self.model.name)
    version = property(lambda self: self.model.version)

    def run(self, recording: schema.Recording) -> schema.ModelOutput:
        with prometheus.INFERENCE_SECONDS.labels(self.name).time():
            return self.model.run(recording)

    def check(self) -> None:
        self.model.check()


def species_of(output: schema.ModelOutput) -> list[str]:
    """Each detection's best ``species`` tag ("unknown" without one)."""
    found = []
    for detection in output.detections:
        tags = [t for t in detection.tags if t.tag.key == "species" and t.tag.value]
        best = max(tags, key=lambda t: t.confidence, default=None)
        found.append(best.tag.value if best is not None else "unknown")
    return found


@dataclass
class DetectionPipeline:
    store: StoreClient
    model: Model
    processing_filters: Sequence[ProcessingFilter] = field(default_factory=list)
    output_cleaners: Sequence[ModelOutputCleaner] = field(default_factory=list)
    message_builders: Sequence[MessageBuilder] = field(default_factory=list)

    def process(
        self, recording_id: uuid.UUID | str, recording: schema.Recording | None = None
    ) -> Result:
        """``recording``: what the recorder handed over, trusted as is (a first delivery: nothing
        can have run yet). Without it, storage is asked, and a recording that already has this
        model's output (a redelivered task) is not run again. Either way the store call is
        idempotent, so no output is stored twice."""
        if recording is None:
            entry = self.store.get_recording(recording_id, include_model_outputs=True)
            recording = convert.recording_from_proto(entry.recording)
            done = next((o for o in entry.model_outputs if o.model_name == self.model.name), None)
            if done is not None:
                log.info("recording %s already has a %s output", recording.id, self.model.name)
                return Result(Outcome.ALREADY_STORED, recording.id, uuid.UUID(done.id))
        unit = OutputWithMessages(self.store)
        detect = generate_detection_task(
            unit,
            TimedModel(self.model),
            unit,
            logger=log,
            output_cleaners=list(self.output_cleaners),
            processing_filters=list(self.processing_filters),
            message_factories=list(self.message_builders),
        )
        output = detect(recording)
        if output is None:
            return Result(Outcome.FILTERED_OUT, recording.id)
        reply = unit.commit()
        outcome = Outcome.STORED if reply.created else Outcome.ALREADY_STORED
        if reply.created:
            for species in species_of(output):
                prometheus.DETECTIONS.labels(species).inc()
        return Result(
            outcome,
            recording.id,
            uuid.UUID(reply.model_output_id),
            detections=len(output.detections),
            messages=len(unit.messages) if reply.created else 0,
        )


def message_builder(section: DetectionConfig) -> MessageBuilder:
    if section.message_threshold is None:
        return FullModelOutputMessageBuilder()
    return DetectionThresholdMessageBuilder(section.message_threshold)


class Detector:
    """The pipeline a `detection` section asks for. A model is made once and kept while the
    section names it: the bundled one is loaded (``load_bundled``) on first use in this process;
    a model server is reached as ``RemoteModel``."""

    def __init__(
        self,
        store: StoreClient,
        load_bundled: Callable[[], AudioModel],
        processing_filters: Sequence[ProcessingFilter] = (),
    ) -> None:
        self.store = store
        self.load_bundled = load_bundled
        self.processing_filters = list(processing_filters)
        self._bundled: LocalModel | None = None
        self._remote: tuple[tuple[str, bool], RemoteModel] | None = None

    def model(self, section: DetectionConfig) -> Model:
        if section.model == "batdetect2":
            if self._bundled is None:
                self._bundled = LocalModel(self.load_bundled())
            return self._bundled
        key = (section.model, section.model_send_audio)
        if self._remote is None or self._remote[0] != key:
            if self._remote is not None:
                self._remote[1].close()
            target = section.model.removeprefix("grpc://")
            self._remote = (key, RemoteModel(target, send_audio=section.model_send_audio))
            log.info("model server %s%s", target, " (audio streamed)" if key[1] else "")
        return self._remote[1]

    def pipeline(self, section: DetectionConfig | None) -> DetectionPipeline:
        """Without a section (a program that has none sent `detect`): its defaults."""
        section = section or DetectionConfig()
        return DetectionPipeline(
            store=self.store,
            model=self.model(section),
            processing_filters=self.processing_filters,
            output_cleaners=[ThresholdDetectionCleaner(section.threshold)],
            message_builders=[message_builder(section)],
        )
