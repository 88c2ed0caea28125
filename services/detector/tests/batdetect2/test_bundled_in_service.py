"""The bundled BatDetect2 as the detector service uses it: as a pipeline model against real storage,
and served over gRPC so that a client gets the same detections as in process."""

from __future__ import annotations

from acoustack.clients import StoreClient
from acoustack.components import ThresholdDetectionCleaner
from acoustack.grpc_server import start_server
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.local_model import LocalModel
from acoustack_detector.pipeline import DetectionPipeline, Outcome
from acoustack_detector.remote_model import RemoteModel
from acoustack_detector.servicer import ModelServicer, register


def test_the_bundled_model_runs_in_the_pipeline_and_passes_its_self_check(
    bundled_model, storage_target, recordings_root, make_recording
):
    assert isinstance(bundled_model, AudioModel)
    wav = next(recordings_root.glob("*.wav"))
    model = LocalModel(bundled_model, check_file=wav, check_min_detections=5)
    model.check()
    expected = [d for d in bundled_model.detect_file(wav) if d.detection_score >= 0.2]
    with StoreClient(storage_target) as store:
        deployment = store.start_deployment("meadow", 52.2, 0.12)
        recording = make_recording(wav, deployment.id)
        store.store_recording(recording)
        result = DetectionPipeline(
            store=store, model=model, output_cleaners=[ThresholdDetectionCleaner(0.2)]
        ).process(recording.id)
        assert result.outcome is Outcome.STORED
        stored = store.get_recording(recording.id, include_model_outputs=True).model_outputs[0]
    assert stored.model_name == bundled_model.name
    assert len(stored.detections) == len(expected) > 0
    assert {d.tags[0].tag.value for d in stored.detections} == {
        d.tags[0].tag.value for d in expected
    }


def test_a_client_gets_the_same_detections_over_grpc(
    bundled_model, recordings_root, make_recording
):
    running = start_server(
        [register(ModelServicer(bundled_model, recordings_root=recordings_root))],
        address="127.0.0.1:0",
    )
    try:
        wav = next(recordings_root.glob("*.wav"))
        remote = RemoteModel(f"127.0.0.1:{running.port}")
        assert (remote.name, remote.version) == (bundled_model.name, bundled_model.version)
        recording = make_recording(wav)
        by_path = remote.run(recording)
        streamed = RemoteModel(f"127.0.0.1:{running.port}", send_audio=True).run(recording)
        local = bundled_model.detect_file(wav)
    finally:
        running.stop(0)

    def boxes(detections):
        return [
            (round(d.box.start_time_s, 6), round(d.box.low_freq_hz), round(d.detection_score, 6))
            for d in detections
        ]

    assert boxes(by_path.detections) == boxes(local)
    assert boxes(streamed.detections) == boxes(local)


def test_the_bundled_model_and_the_example_server_on_the_same_recording(
    bundled_model, storage_target, example_server, recordings_root, make_recording
):
    """detection.extra_models with the real models: BatDetect2 in process and the example server
    as its own process, run in parallel on one recording, each output stored under its name."""
    from acoustack.program_config import DetectionConfig
    from acoustack_detector.pipeline import Detector
    from acoustack_detector.tasks import run_all

    section = DetectionConfig.model_validate(
        {"extra_models": [{"model": f"grpc://{example_server}", "name": "energy-band"}]}
    )
    with StoreClient(storage_target) as store:
        deployment = store.start_deployment("meadow", 52.2, 0.12)
        recording = make_recording(next(recordings_root.glob("*.wav")), deployment.id)
        store.store_recording(recording)
        runs = Detector(store, lambda: bundled_model).runs(section)
        results = run_all(runs, str(recording.id), recording)
        assert [r.outcome for r in results] == [Outcome.STORED, Outcome.STORED]
        outputs = store.get_recording(recording.id, include_model_outputs=True).model_outputs
    counts = {o.model_name: len(o.detections) for o in outputs}
    assert set(counts) == {"BatDetect2", "energy-band"} and all(counts.values())
    species = {t.tag.value for o in outputs if o.model_name == "BatDetect2"
               for d in o.detections for t in d.tags}  # fmt: skip
    assert species and species <= set(bundled_model.classes)  # BatDetect2's own classes


def test_the_detectors_own_model_server_passes_the_conformance_check(
    bundled_model, recordings_root, capsys
):
    from acoustack import cli

    running = start_server(
        [register(ModelServicer(bundled_model, recordings_root=recordings_root))],
        address="127.0.0.1:0",
    )
    try:
        status = cli.main([
            "model", "check", f"grpc://127.0.0.1:{running.port}",
            "--recordings-dir", str(recordings_root), "--long-s", "3",
        ])  # fmt: skip
    finally:
        running.stop(0)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "9 passed, 0 warnings, 0 failed" in out and "BatDetect2 1.3.1" in out
