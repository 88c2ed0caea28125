"""The detection pipeline for one recording: filters → model → cleaners → store (with messages).

Domain logic only: the Celery task and the CLI call it. Storing the output and its messages is one
storage call, idempotent per (recording, model), so a redelivered task stores nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from acoustack import convert, schema
from acoustack.clients import StoreClient
from acoustack.components.types import MessageBuilder, Model, ModelOutputCleaner, ProcessingFilter

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
        for processing_filter in self.processing_filters:
            if not processing_filter.should_process_recording(recording):
                log.info(
                    "recording %s skipped by %s", recording.id, type(processing_filter).__name__
                )
                return Result(Outcome.FILTERED_OUT, recording.id)
        output = self.model.run(recording)
        for cleaner in self.output_cleaners:
            output = cleaner.clean(output)
        messages = [
            m
            for builder in self.message_builders
            if (m := builder.build_message(output)) is not None
        ]
        reply = self.store.store_model_output(output, messages)
        outcome = Outcome.STORED if reply.created else Outcome.ALREADY_STORED
        return Result(
            outcome,
            recording.id,
            uuid.UUID(reply.model_output_id),
            detections=len(output.detections),
            messages=len(messages) if reply.created else 0,
        )
