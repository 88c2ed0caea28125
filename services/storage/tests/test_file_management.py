"""File management on real files and a real database: what is saved where, what waits, what is
deleted, and what a failed store update leaves behind (nothing half-moved)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
import wave
from pathlib import Path

import pytest
from astral import Observer, sun

from acoustack import convert, schema
from acoustack.celery_app import create_app
from acoustack.errors import UnavailableError
from acoustack.tasks import generate_file_management_task
from acoustack.testing import factories
from acoustack.v1 import types_pb2 as pb
from acoustack_storage.files import DateFolderManager, RepositoryStore
from acoustack_storage.repository import PostgresStore
from acoustack_storage.tasks import register_manage_files_task

STARTED = dt.datetime(2026, 6, 1, 23, 59, 58, tzinfo=dt.UTC)


@pytest.fixture
def temp_dir(tmp_path) -> Path:
    path = tmp_path / "shm"
    path.mkdir()
    return path


@pytest.fixture
def destination(tmp_path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def deployment(store: PostgresStore) -> schema.Deployment:
    return store.start_deployment(schema.Deployment(name="meadow", latitude=52.2, longitude=0.12))


def write_wav(path: Path, seconds: float = 0.1, rate: int = 48_000) -> bytes:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(range(256)) * int(seconds * rate * 2 / 256))
    return path.read_bytes()


def temporary_recording(store, deployment, temp_dir, **overrides) -> tuple[schema.Recording, bytes]:
    rid = uuid.uuid4()
    path = temp_dir / f"20260601_235958-mic-0-{rid.hex[:8]}.wav"
    content = write_wav(path)
    overrides.setdefault("started_at", STARTED)
    recording = factories.recording(deployment.id, id=rid, path=str(path), **overrides)
    store.store_recording(recording)
    return recording, content


def add_output(store, recording, *scores: float) -> None:
    output = factories.model_output(recording.id, n_detections=len(scores))
    output = output.model_copy(
        update={
            "detections": [
                d.model_copy(update={"detection_score": s})
                for d, s in zip(output.detections, scores, strict=True)
            ]
        }
    )
    store.store_model_output(convert.model_output_to_proto(output))


@pytest.fixture
def manage_files(store, temp_dir):
    """The registered Celery task, called in this process (no broker needed to run its body)."""
    app = create_app("amqp://guest:guest@127.0.0.1:1/unused")
    return register_manage_files_task(app, lambda: store, temp_dir)


def program(destination: Path, *, detection: bool = True, **file_management) -> dict:
    config = {"file_management": {"destination": str(destination), **file_management}}
    if detection:
        config["detection"] = {"model": "batdetect2"}
    return config


def filing(result: dict) -> dict:
    """What a manage_files run reports of its filing (retention has its own tests)."""
    return {key: result[key] for key in ("outcome", "saved", "deleted")}


def stored(store, recording) -> schema.Recording:
    return store.get_recording(recording.id).recording


def test_a_processed_recording_is_filed_under_its_utc_date(
    store, deployment, temp_dir, destination, manage_files
):
    recording, content = temporary_recording(store, deployment, temp_dir)
    add_output(store, recording, 0.9)
    result = manage_files(program_config=program(destination))
    target = destination / "2026" / "06" / "01" / Path(recording.path).name
    assert filing(result) == {"outcome": "done", "saved": 1, "deleted": 0}
    assert target.read_bytes() == content
    assert not Path(recording.path).exists()
    after = stored(store, recording)
    assert (after.path, after.status) == (str(target), schema.RecordingStatus.SAVED)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial file left
    # A second run finds nothing left to do.
    assert manage_files(program_config=program(destination))["saved"] == 0


def test_an_unprocessed_recording_waits_for_the_model(
    store, deployment, temp_dir, destination, manage_files
):
    recording, content = temporary_recording(store, deployment, temp_dir)
    result = manage_files(program_config=program(destination))
    assert filing(result) == {"outcome": "done", "saved": 0, "deleted": 0}
    assert Path(recording.path).read_bytes() == content
    assert stored(store, recording).status is schema.RecordingStatus.TEMPORARY
    assert not destination.exists()
    # A program without a model (`default`) has nothing to wait for.
    assert manage_files(program_config=program(destination, detection=False))["saved"] == 1


def add_named_output(store, recording, model_name: str) -> None:
    output = factories.model_output(recording.id, n_detections=1)
    store.store_model_output(
        convert.model_output_to_proto(output.model_copy(update={"model_name": model_name}))
    )


def test_a_recording_waits_for_every_required_model_and_not_for_the_others(
    store, deployment, temp_dir, destination, manage_files
):
    """detection.extra_models: a required model's output is waited for by name; one that is not
    required is not waited for, and its output is kept when it comes later."""
    config = program(destination)
    config["detection"]["extra_models"] = [
        {"model": "grpc://127.0.0.1:50061", "name": "energy-band"},
        {"model": "grpc://127.0.0.1:50062", "name": "slow-optional", "required": False},
    ]
    recording, _ = temporary_recording(store, deployment, temp_dir)
    add_named_output(store, recording, "energy-band")  # the extra first: the main model's missing
    assert manage_files(program_config=config)["saved"] == 0
    add_named_output(store, recording, "BatDetect2")
    assert manage_files(program_config=config)["saved"] == 1  # not waiting for slow-optional
    add_named_output(store, recording, "slow-optional")  # arrives after filing: kept
    documents = store.get_recording(recording.id, include_model_outputs=True)
    names = {pb.ModelOutput.FromString(d).model_name for d in documents.model_output_documents}
    assert names == {"energy-band", "BatDetect2", "slow-optional"}
    assert stored(store, recording).status is schema.RecordingStatus.SAVED


def test_without_save_all_only_confident_recordings_are_kept(
    store, deployment, temp_dir, destination, manage_files
):
    confident, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, confident, 0.1, 0.5)
    doubtful, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, doubtful, 0.2, 0.49)
    silent, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, silent)  # the model found nothing
    result = manage_files(program_config=program(destination, save_all=False, saving_threshold=0.5))
    assert filing(result) == {"outcome": "done", "saved": 1, "deleted": 2}
    assert stored(store, confident).status is schema.RecordingStatus.SAVED
    assert Path(stored(store, confident).path).is_file()
    for gone in (doubtful, silent):
        assert stored(store, gone).status is schema.RecordingStatus.DELETED
        assert not Path(gone.path).exists()
    assert [p.name for p in destination.rglob("*.wav")] == [Path(confident.path).name]


def test_other_files_and_recordings_are_left_alone(
    store, deployment, temp_dir, destination, manage_files
):
    # A file no recording owns (the recorder's reconcile deals with it), one being written, and
    # a failed recording: none is file management's to move.
    (temp_dir / "unregistered.wav").write_bytes(b"RIFF")
    (temp_dir / ".20260601-partial.wav").write_bytes(b"RIFF")
    failed, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, failed, 0.9)
    store.mark_recording_failed(failed.id, "detection: unreadable")
    assert manage_files(program_config=program(destination))["saved"] == 0
    assert sorted(p.name for p in temp_dir.iterdir()) == sorted(
        [".20260601-partial.wav", "unregistered.wav", Path(failed.path).name]
    )


def test_a_bad_file_management_section_is_refused_by_name(manage_files, destination):
    """Refused as the task's arguments are read: nothing is touched, and the field is named."""
    result = manage_files(program_config=program(destination, save_all="sometimes"))
    assert result["outcome"] == "rejected"
    assert "program_config.file_management.save_all" in result["reason"]


class CutWhileSaving:
    """A saving manager that pulls the database's plug once it has been asked where to save: the
    store update that follows fails, as it would if Postgres died mid-run."""

    def __init__(self, manager, proxy) -> None:
        self.manager, self.proxy = manager, proxy

    def save_recording(self, recording, model_outputs):
        self.proxy.cut()
        return self.manager.save_recording(recording, model_outputs)


def test_a_failed_store_update_leaves_the_recording_where_it_was(
    store, deployment, proxied_database, temp_dir, destination
):
    recording, content = temporary_recording(store, deployment, temp_dir)
    add_output(store, recording, 0.9)
    proxy, url = proxied_database
    repository = PostgresStore.open(url, timeout_s=1.0)
    try:
        task = generate_file_management_task(
            RepositoryStore(repository),
            [CutWhileSaving(DateFolderManager(destination), proxy)],
            tmp_path=temp_dir,
        )
        with pytest.raises(UnavailableError):
            task()
        assert Path(recording.path).read_bytes() == content
        assert [p for p in destination.rglob("*") if p.is_file()] == []  # no copy, no partial
        assert stored(store, recording).path == recording.path  # read past the proxy
        assert stored(store, recording).status is schema.RecordingStatus.TEMPORARY

        # With the database back, the next run saves it (runs are minutes apart; the store
        # reconnects within seconds).
        proxy.restore()
        deadline = time.monotonic() + 10
        while not repository.ping() and time.monotonic() < deadline:
            time.sleep(0.1)
        generate_file_management_task(
            RepositoryStore(repository), [DateFolderManager(destination)], tmp_path=temp_dir
        )()
        assert stored(store, recording).status is schema.RecordingStatus.SAVED
        assert Path(stored(store, recording).path).read_bytes() == content
        assert not Path(recording.path).exists()
    finally:
        repository.close()


# --- saving filters (any one keeps a recording) and saving managers (first that takes it) -------


def add_tagged_output(store, recording, *detections: tuple[str, float, float]) -> None:
    """Detections as (species, tag confidence, detection score)."""
    output = factories.model_output(recording.id, n_detections=len(detections))
    output = output.model_copy(
        update={
            "detections": [
                d.model_copy(
                    update={
                        "detection_score": score,
                        "tags": [
                            schema.PredictedTag(
                                tag=schema.Tag(key="species", value=species), confidence=confidence
                            )
                        ],
                    }
                )
                for d, (species, confidence, score) in zip(
                    output.detections, detections, strict=True
                )
            ]
        }
    )
    store.store_model_output(convert.model_output_to_proto(output))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def kept(store, *recordings) -> list[bool]:
    return [stored(store, r).status is schema.RecordingStatus.SAVED for r in recordings]


def only(**saving) -> dict:
    """save_all off, the default threshold filter off, and just these filters on."""
    return {"save_all": False, "saving_threshold": None, **saving}


def test_daily_windows_keep_what_started_inside_them_in_local_time(
    store, deployment, temp_dir, destination, manage_files
):
    # 21:30 in London in June is 20:30 UTC; 22:30 UTC is 23:30 there, outside 21:00-23:00.
    inside, _ = temporary_recording(store, deployment, temp_dir, started_at=at("2026-06-01T20:30Z"))
    outside, _ = temporary_recording(
        store, deployment, temp_dir, started_at=at("2026-06-01T22:30Z")
    )
    config = program(
        destination,
        detection=False,
        **only(save_daily_windows="21:00-23:00", save_timezone="Europe/London"),
    )
    assert filing(manage_files(program_config=config))["deleted"] == 1
    assert kept(store, inside, outside) == [True, False]


def test_a_duty_cycle_keeps_the_first_minutes_of_every_period(
    store, deployment, temp_dir, destination, manage_files
):
    starts = ["2026-06-01T00:03Z", "2026-06-01T00:10Z", "2026-06-01T00:31Z", "2026-06-01T23:59Z"]
    recordings = [
        temporary_recording(store, deployment, temp_dir, started_at=at(s))[0] for s in starts
    ]
    config = program(destination, detection=False, **only(save_duty_cycle="5/30"))
    manage_files(program_config=config)
    assert kept(store, *recordings) == [True, False, True, False]


def test_a_sun_window_is_taken_at_the_deployments_own_coordinates(
    store, temp_dir, destination, manage_files
):
    # Far from Greenwich: dusk in Tucson on 1 June 2026 is about 03:00 UTC the next day.
    tucson = store.start_deployment(
        schema.Deployment(name="sonoran", latitude=32.2, longitude=-110.9)
    )

    dusk = sun.dusk(Observer(32.2, -110.9), date=dt.date(2026, 6, 2), tzinfo=dt.UTC)
    at_dusk, _ = temporary_recording(
        store, tucson, temp_dir, started_at=dusk + dt.timedelta(minutes=10)
    )
    greenwich_dusk = sun.dusk(Observer(51.48, 0.0), date=dt.date(2026, 6, 1), tzinfo=dt.UTC)
    at_greenwich_dusk, _ = temporary_recording(
        store, tucson, temp_dir, started_at=greenwich_dusk + dt.timedelta(minutes=10)
    )
    config = program(destination, detection=False, **only(save_sun_window="dusk-30m+1h"))
    manage_files(program_config=config)
    assert kept(store, at_dusk, at_greenwich_dusk) == [True, False]


def test_tags_keep_a_species_seen_confidently_enough(
    store, deployment, temp_dir, destination, manage_files
):
    sure, _ = temporary_recording(store, deployment, temp_dir)
    add_tagged_output(store, sure, ("Myotis daubentonii", 0.6, 0.3))
    unsure, _ = temporary_recording(store, deployment, temp_dir)
    add_tagged_output(store, unsure, ("Myotis daubentonii", 0.4, 0.9))
    other, _ = temporary_recording(store, deployment, temp_dir)
    add_tagged_output(store, other, ("Pipistrellus pipistrellus", 0.99, 0.99))
    config = program(
        destination,
        **only(save_tags=["species=Myotis daubentonii"], save_tags_threshold=0.5),
    )
    manage_files(program_config=config)
    assert kept(store, sure, unsure, other) == [True, False, False]


def test_filters_combine_with_or(store, deployment, temp_dir, destination, manage_files):
    confident, _ = temporary_recording(
        store, deployment, temp_dir, started_at=at("2026-06-01T12:00Z")
    )
    add_output(store, confident, 0.9)
    in_window, _ = temporary_recording(
        store, deployment, temp_dir, started_at=at("2026-06-01T21:30Z")
    )
    add_output(store, in_window, 0.1)
    neither, _ = temporary_recording(
        store, deployment, temp_dir, started_at=at("2026-06-01T12:00Z")
    )
    add_output(store, neither, 0.1)
    config = program(
        destination, save_all=False, saving_threshold=0.8, save_daily_windows="21:00-22:00"
    )
    manage_files(program_config=config)
    assert kept(store, confident, in_window, neither) == [True, True, False]


def test_managers_are_tried_in_order_and_a_recording_none_takes_is_deleted(
    store, deployment, temp_dir, destination, manage_files
):
    sure, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, sure, 0.9)
    maybe, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, maybe, 0.5)
    faint, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, faint, 0.1)
    config = program(
        destination,
        saving_managers=["confidence_folders", "id"],
        confident_threshold=0.8,
        unconfident_threshold=0.3,
        file_name_time_format="%Y-%m-%dT%H%M%S",
    )
    manage_files(program_config=config)
    name = "2026-06-01T235958-mic-0-{}.wav"
    assert stored(store, sure).path == str(
        destination / "confident" / "2026" / "06" / "01" / name.format(sure.id.hex[:8])
    )
    assert stored(store, maybe).path == str(
        destination / "unconfident" / "2026" / "06" / "01" / name.format(maybe.id.hex[:8])
    )
    assert stored(store, faint).path == str(destination / f"{faint.id}.wav")
    assert all(Path(stored(store, r).path).is_file() for r in (sure, maybe, faint))

    # With confidence folders alone, a recording they do not take is deleted.
    left_over, _ = temporary_recording(store, deployment, temp_dir)
    add_output(store, left_over, 0.1)
    manage_files(program_config=program(destination, saving_managers=["confidence_folders"]))
    assert stored(store, left_over).status is schema.RecordingStatus.DELETED
    assert not Path(left_over.path).exists()


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"save_all": False, "saving_threshold": None}, "save_all"),
        ({"save_duty_cycle": "30/30"}, "file_management.save_duty_cycle"),
        ({"save_tags": ["Myotis"]}, "file_management.save_tags"),
        ({"save_timezone": "Mars/Olympus"}, "file_management.save_timezone"),
        ({"saving_managers": ["by_colour"]}, "file_management.saving_managers"),
    ],
)
def test_a_saving_rule_that_cannot_work_is_refused_and_nothing_is_touched(
    store, deployment, temp_dir, destination, manage_files, section, named
):
    recording, content = temporary_recording(store, deployment, temp_dir)
    add_output(store, recording, 0.9)
    result = manage_files(program_config=program(destination, **section))
    assert result["outcome"] == "rejected"  # when the task's arguments are read
    assert named in result["reason"]
    assert Path(recording.path).read_bytes() == content
    assert stored(store, recording).status is schema.RecordingStatus.TEMPORARY
