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
import threading
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
from acoustack_detector.remote_model import CALL_TIMEOUT_S, ModelRetryPolicy, RemoteModel

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


def message_builder(message_threshold: float | None) -> MessageBuilder:
    if message_threshold is None:
        return FullModelOutputMessageBuilder()
    return DetectionThresholdMessageBuilder(message_threshold)


@dataclass(frozen=True)
class ModelRun:
    """One model of a `detection` section, as one task runs it."""

    model: str  # batdetect2 or grpc://host:port, as the section says
    required: bool
    pipeline: DetectionPipeline


class Detector:
    """The pipelines a `detection` section asks for: `model`, then each of `extra_models`, each
    with its threshold and message rules. A model is made once and kept while the section names
    it: the bundled one is loaded (``load_bundled``) on first use in this process; a model server
    is reached as ``RemoteModel``."""

    def __init__(
        self,
        store: StoreClient,
        load_bundled: Callable[[], AudioModel],
        processing_filters: Sequence[ProcessingFilter] = (),
        *,
        model_retry: ModelRetryPolicy | None = None,
        model_call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.load_bundled = load_bundled
        self.processing_filters = list(processing_filters)
        # What the detect task does when a model server fails (model.proto, STATUS CODES).
        self.model_retry = model_retry or ModelRetryPolicy()
        self.model_call_timeout_s = model_call_timeout_s
        self._bundled: LocalModel | None = None
        self._remotes: dict[tuple[str, bool, str], RemoteModel] = {}
        self._lock = threading.Lock()

    def model(self, model: str, send_audio: bool = False, name: str = "") -> Model:
        """``name``: what the outputs of a model server are called (empty: what it says)."""
        with self._lock:
            if model == "batdetect2":
                if self._bundled is None:
                    self._bundled = LocalModel(self.load_bundled())
                return self._bundled
            key = (model, send_audio, name)
            if key not in self._remotes:
                target = model.removeprefix("grpc://")
                self._remotes[key] = RemoteModel(
                    target,
                    send_audio=send_audio,
                    call_timeout_s=self.model_call_timeout_s,
                    output_name=name,
                )
                log.info("model server %s%s", target, " (audio streamed)" if send_audio else "")
            return self._remotes[key]

    def _forget_others(self, used: set[tuple[str, bool, str]]) -> None:
        """Close the servers the section no longer names (a `config set` changed them)."""
        with self._lock:
            for key in set(self._remotes) - used:
                self._remotes.pop(key).close()

    def _pipeline(self, model: Model, threshold: float, message_threshold: float | None):
        return DetectionPipeline(
            store=self.store,
            model=model,
            processing_filters=self.processing_filters,
            output_cleaners=[ThresholdDetectionCleaner(threshold)],
            message_builders=[message_builder(message_threshold)],
        )

    def runs(self, section: DetectionConfig | None) -> list[ModelRun]:
        """Without a section (a program that has none sent `detect`): its defaults."""
        section = section or DetectionConfig()
        entries = [
            (section.model, section.model_send_audio, "", section.threshold,
             section.message_threshold, True),
            *((e.model, e.send_audio, e.name, e.threshold, e.message_threshold, e.required)
              for e in section.extra_models),
        ]  # fmt: skip
        self._forget_others({(m, audio, name) for m, audio, name, *_ in entries})
        return [
            ModelRun(
                model,
                required,
                self._pipeline(self.model(model, audio, name), threshold, messages),
            )
            for model, audio, name, threshold, messages, required in entries
        ]

    def pipeline(self, section: DetectionConfig | None) -> DetectionPipeline:
        """The pipeline of the section's `model` alone."""
        return self.runs(section)[0].pipeline
