"""`acoustack detect` through the real CLI entry point on the shared recordings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from acoustack import cli
from acoustack_detector.testing import RECORDINGS

AUDIO = Path(__file__).resolve().parents[1] / "data" / "audio"


def test_json_lines_match_the_model_for_every_file_of_a_folder(bundled_model, capsys, model_dir):
    assert cli.main(["detect", str(AUDIO), "--json", "--model-dir", str(model_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(line["file"]).name for line in lines] == sorted(RECORDINGS)
    for line in lines:
        expected = [d.as_dict() for d in bundled_model.predict_file(line["file"])]
        assert line["detections"] == expected
        assert set(line["detections"][0]) == {
            "start_time", "end_time", "low_freq", "high_freq", "class", "class_prob", "det_prob",
        }  # fmt: skip


def test_unreadable_files_are_reported_after_the_rest_with_a_failing_status(
    tmp_path, capsys, model_dir
):
    (tmp_path / "a_broken.wav").write_bytes(b"not audio")
    shutil.copy(AUDIO / RECORDINGS[2], tmp_path / "b_rhifer.wav")
    (tmp_path / "c_empty.wav").write_bytes(b"")
    status = cli.main(
        ["detect", str(tmp_path), "--threshold", "0.5", "--model-dir", str(model_dir)]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "b_rhifer.wav: 7 detections" in captured.out
    assert "Rhinolophus ferrumequinum" in captured.out
    assert "a_broken.wav" in captured.err and "c_empty.wav" in captured.err
    assert "2 of 3 files could not be read (the others were processed)" in captured.err


def test_a_threshold_outside_0_1_is_refused(capsys):
    assert cli.main(["detect", "x.wav", "--threshold", "3"]) == 2
    assert "--threshold: 3.0 is outside 0..1" in capsys.readouterr().err


def test_a_model_server_gives_the_same_lines_as_the_bundled_model(bundled_model, capsys, model_dir):
    """The bundled model served over the Model contract (as the detector serves it), run with
    --model grpc://…: streamed, and named by path, the same JSON lines as in process."""
    from acoustack.grpc_server import start_server
    from acoustack_detector.servicer import ModelServicer, register

    running = start_server(
        [register(ModelServicer(bundled_model, recordings_root=AUDIO))], address="127.0.0.1:0"
    )
    try:
        assert cli.main(["detect", str(AUDIO), "--json", "--model-dir", str(model_dir)]) == 0
        bundled = capsys.readouterr().out
        for how in ([], ["--by-path"]):
            model = f"grpc://127.0.0.1:{running.port}"
            assert cli.main(["detect", str(AUDIO), "--json", "--model", model, *how]) == 0
            assert capsys.readouterr().out == bundled
    finally:
        running.stop(0)
