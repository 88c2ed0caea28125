"""The acoustack side of the storage benchmark: the storage service, through its gRPC client.

For each stage: a scratch Postgres database on the local server, a storage service started on it as
a subprocess (same interpreter), the deployment prefilled through the client, then the same timed
calls as reference_acoupi.py. Runs in the workspace venv; run.py imports run_stage.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import workload

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared support module
from support import scratch_database, storage_service

from acoustack import convert, schema
from acoustack.clients import StoreClient


def log(text: str) -> None:
    print(f"[acoustack] {text}", file=sys.stderr, flush=True)


def schema_recording(index: int, deployment_id: str) -> schema.Recording:
    synthetic = workload.recording(index)
    return schema.Recording(
        deployment_id=deployment_id,
        device_id=workload.DEVICE_ID,
        path=synthetic.path,
        started_at=synthetic.started_at,
        duration_s=synthetic.duration_s,
        capture_samplerate_hz=synthetic.samplerate_hz,
    )


def schema_model_output(index: int, recording: schema.Recording) -> schema.ModelOutput:
    """The output a detector would hand to the store: built before, and outside, any timing."""
    return schema.ModelOutput(
        recording_id=recording.id,
        model_name=workload.MODEL_NAME,
        model_version=workload.MODEL_VERSION,
        created_at=workload.recording(index).output_created_at,
        detections=[
            schema.Detection(
                box=schema.BoundingBox(
                    start_time_s=d.start_time_s,
                    end_time_s=d.end_time_s,
                    low_freq_hz=d.low_freq_hz,
                    high_freq_hz=d.high_freq_hz,
                ),
                detection_score=d.score,
                tags=[
                    schema.PredictedTag(
                        tag=schema.Tag(key=t.key, value=t.value), confidence=t.confidence
                    )
                    for t in d.tags
                ],
            )
            for d in workload.detections(index)
        ],
    )


def prefill(client: StoreClient, deployment_id: str, count: int) -> None:
    """Store `count` recordings, each followed by its output, as a running deployment would."""
    for index in range(count):
        recording = schema_recording(index, deployment_id)
        client.store_recording(recording)
        client.store_model_output(schema_model_output(index, recording))
        if (index + 1) % (10 * workload.RECORDINGS_PER_DAY) == 0:
            log(f"  prefilled {index + 1}/{count}")


def time_each(calls: Iterable[Callable[[], object]]) -> list[float]:
    durations = []
    for call in calls:
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return durations


def check_loaded(reply) -> None:
    """The timed lookup must have returned every recording with its full output."""
    expected = workload.LOAD_SAMPLE
    full = [
        entry
        for entry in reply.entries
        if len(entry.model_outputs) == 1
        and len(entry.model_outputs[0].detections) == workload.DETECTIONS_PER_OUTPUT
        and all(
            len(d.tags) == workload.TAGS_PER_DETECTION for d in entry.model_outputs[0].detections
        )
    ]
    if len(reply.entries) != expected or len(full) != expected:
        raise RuntimeError(
            f"acoustack returned {len(reply.entries)} recordings, {len(full)} with a full model "
            f"output; expected {expected} (missing paths: {list(reply.missing_paths)})"
        )


def as_schema_objects(reply) -> list[schema.RecordingEntry]:
    return [
        schema.RecordingEntry(
            recording=convert.recording_from_proto(entry.recording),
            model_outputs=[convert.model_output_from_proto(o) for o in entry.model_outputs],
        )
        for entry in reply.entries
    ]


def run_stage(stage: str) -> dict[str, object]:
    with (
        scratch_database("bench_storage") as database_url,
        storage_service(database_url) as target,
        StoreClient(target) as client,
    ):
        deployment = client.start_deployment(
            workload.DEPLOYMENT_NAME,
            workload.DEPLOYMENT_LATITUDE,
            workload.DEPLOYMENT_LONGITUDE,
            started_at=workload.DEPLOYMENT_START,
        )

        existing = workload.STAGES[stage]
        log(f"{stage}: prefilling {existing} recordings with outputs through the client")
        start = time.perf_counter()
        prefill(client, deployment.id, existing)
        prefill_s = time.perf_counter() - start
        log(f"{stage}: prefill took {prefill_s:.1f} s")

        indexes = workload.timed_recording_indexes(stage)
        recordings = [schema_recording(index, deployment.id) for index in indexes]
        store_recording = time_each(lambda r=r: client.store_recording(r) for r in recordings)

        # The detector holds a model output as the Model contract returns it, a proto message
        # (acoupi's detector holds its pydantic object): it is built before the timed call, and
        # serializing it is inside the call, as acoupi's turning its object into rows is.
        outputs = [
            convert.model_output_to_proto(schema_model_output(i, r))
            for i, r in zip(indexes, recordings, strict=True)
        ]
        store_model_output = time_each(lambda o=o: client.store_model_output(o) for o in outputs)

        # Not one of the nine lines: the same store from acoustack's schema objects, so the cost of
        # the conversion to proto is in view too. Fresh recordings: a second output of the same
        # model for a recording would be a no-op.
        extra = [schema_recording(index + workload.TIMED_BATCH, deployment.id) for index in indexes]
        for recording in extra:
            client.store_recording(recording)
        extra_outputs = [
            schema_model_output(index + workload.TIMED_BATCH, recording)
            for index, recording in zip(indexes, extra, strict=True)
        ]
        store_from_schema = time_each(
            lambda o=o: client.store_model_output(o) for o in extra_outputs
        )

        paths = workload.load_sample_paths()
        replies: list = []
        load_recordings = time_each(
            lambda: replies.append(client.get_recordings_by_path(paths, include_model_outputs=True))
            for _ in range(workload.LOAD_REPETITIONS)
        )
        check_loaded(replies[-1])
        # Not one of the nine lines: the client returns proto messages, while acoupi returns pydantic
        # objects, so this shows what turning the reply into acoustack's schema objects would add.
        load_as_schema = time_each(
            lambda: as_schema_objects(client.get_recordings_by_path(paths))
            for _ in range(workload.LOAD_REPETITIONS)
        )

    return {
        "stage": stage,
        "prefill_s": prefill_s,
        "durations_s": {
            "store_recording": store_recording,
            "store_model_output": store_model_output,
            "load_recordings": load_recordings,
            "load_recordings_as_schema": load_as_schema,
            "store_model_output_from_schema": store_from_schema,
        },
    }
