"""`acoustack detect --model grpc://HOST:PORT`: any model server over files, offline, in the same
lines as the bundled model (the example server as its own process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from acoustack import cli
from acoustack.testing.servers import free_port

AUDIO = Path(__file__).resolve().parent / "data" / "audio"


def test_the_example_server_runs_over_a_folder(capsys, example_server, tmp_path):
    folder = tmp_path / "night"
    shutil.copytree(AUDIO, folder, ignore=shutil.ignore_patterns("*.md"))
    (folder / "z_broken.wav").write_bytes(b"RIFF nonsense")
    status = cli.main(["detect", str(folder), "--json", "--model", f"grpc://{example_server}"])
    captured = capsys.readouterr()
    assert status == 1  # the broken file, reported after the rest
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 3 and all(line["detections"] for line in lines)
    first = lines[0]["detections"][0]
    assert set(first) == {
        "start_time", "end_time", "low_freq", "high_freq", "class", "class_prob", "det_prob",
    }  # fmt: skip
    assert first["class"] == "band-energy" and 0 < first["det_prob"] <= 1
    assert first["low_freq"] == 20000 and first["end_time"] <= 0.5
    assert "z_broken.wav" in captured.err
    assert "1 of 4 files could not be read" in captured.err


def test_time_expansion_and_threshold_reach_the_server(capsys, example_server):
    wav = str(AUDIO / "20180530_213516-EPTSER-LR_0_0.5.wav")  # 384 kHz
    model = f"grpc://{example_server}"
    assert cli.main(["detect", wav, "--json", "--model", model]) == 0
    plain = json.loads(capsys.readouterr().out)["detections"]
    assert cli.main(["detect", wav, "--json", "--model", model, "--threshold", "0.9"]) == 0
    strict = json.loads(capsys.readouterr().out)["detections"]
    assert all(d["det_prob"] >= 0.9 for d in strict) and len(strict) < len(plain)
    # As a x4 time-expanded file, the same samples are 4 times shorter in real time.
    assert cli.main(["detect", wav, "--json", "--model", model, "--time-expansion", "4"]) == 0
    expanded = json.loads(capsys.readouterr().out)["detections"]
    assert expanded and max(d["end_time"] for d in expanded) <= 0.125 + 1e-9
    # x10 would make it a 3.84 MHz capture: refused by name, nothing sent.
    assert cli.main(["detect", wav, "--model", model, "--time-expansion", "10"]) == 1
    assert "recording.capture_samplerate_hz" in capsys.readouterr().err


def test_an_unreachable_server_is_one_error(capsys):
    target = f"127.0.0.1:{free_port()}"
    assert cli.main(["detect", str(AUDIO), "--model", f"grpc://{target}"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: model server {target}")


def test_bad_model_options_are_refused(capsys):
    assert cli.main(["detect", "x.wav", "--model", "http://host/model"]) == 2
    assert "neither batdetect2 nor grpc://HOST:PORT" in capsys.readouterr().err
    assert cli.main(["detect", "x.wav", "--by-path"]) == 2
    assert "--by-path: only with --model" in capsys.readouterr().err
