"""`acoustack detect FILE_OR_DIR... [--model grpc://HOST:PORT] [--threshold T] [--json]`: a model on
files, in batch.

The bundled BatDetect2 (make model), or any model server, on every WAV named or found under a named
folder. With --json, one line per file in batdetect2's own field names and units (seconds, Hz),
whichever model ran. Files that cannot be read are reported after the rest are processed, and the
exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from acoustack.cli import error, paint
from acoustack.errors import AcoustackError

PROGRESS_FROM_FILES = 5  # fewer files than this finish before a progress bar would help


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "detect",
        help="run BatDetect2 (bundled, ONNX) on WAV files or folders",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="FILE_OR_DIR", help="WAV files or folders of them"
    )
    parser.add_argument(
        "--model", default="batdetect2", metavar="batdetect2|grpc://HOST:PORT",
        help="the bundled BatDetect2 (default) or a model server; its audio is streamed to it",
    )  # fmt: skip
    parser.add_argument(
        "--by-path", action="store_true",
        help="with --model grpc://…: name each file instead of streaming it (the server must see "
        "it at the same path)",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="keep detections at least this probable (default: batdetect2's own, 0.01)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON line per file")
    parser.add_argument(
        "--time-expansion", type=float, default=1.0, help="the recordings' time expansion factor"
    )
    parser.add_argument(
        "--channel", type=int, default=0, help="channel of multi-channel files (first: 0)"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="the exported model (default: build/model)"
    )
    parser.set_defaults(handler=run)

    model = commands.add_parser(
        "model", help="model servers: check one against the Model contract",
        description="Model servers (proto/acoustack/v1/model.proto).",
    )  # fmt: skip
    model_commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    check = model_commands.add_parser(
        "check",
        help="run the conformance checks against a model server",
        description=model_check_doc(),
    )
    check.add_argument("target", metavar="grpc://HOST:PORT", help="the model server")
    check.add_argument(
        "--recordings-dir", type=Path, default=None,
        help="a folder the server sees at the same path (its recordings volume), for Detect by "
        "path; default: a temporary folder, which only a server on this machine can see",
    )  # fmt: skip
    check.add_argument(
        "--long-s", type=float, default=60.0,
        help="seconds of audio in the long streamed request (0: skip it; default 60)",
    )  # fmt: skip
    check.set_defaults(handler=run_model_check)


def wav_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each file as given; each folder's WAV files (any depth), in name order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix.lower() == ".wav" and p.is_file()
            )
        else:
            yield path


def progress(done: int, total: int, name: str) -> None:
    width = 30
    filled = width * done // total
    bar = "█" * filled + "·" * (width - filled)
    sys.stderr.write(f"\r{bar} {done}/{total} {name[:40]:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        error(f"--threshold: {args.threshold} is outside 0..1")
        return 2
    remote = None
    if args.model != "batdetect2":
        target = model_target(args.model) if args.model.startswith("grpc://") else None
        if target is None:
            error(f"--model: {args.model!r} is neither batdetect2 nor grpc://HOST:PORT")
            return 2
        if args.channel:
            error("--channel: only for the bundled model (a model server picks its channel)")
            return 2
    elif args.by_path:
        error("--by-path: only with --model grpc://HOST:PORT")
        return 2
    files = list(wav_files(args.paths))
    if not files:
        error("no WAV files found in " + ", ".join(str(p) for p in args.paths))
        return 1
    if args.model == "batdetect2":
        from acoustack_detector.batdetect2.model import BatDetect2Onnx  # loads only when used

        model = BatDetect2Onnx.load(args.model_dir)

        def detect(path: Path) -> list[dict]:
            found = model.predict_file(
                path, args.time_expansion, channel=args.channel, threshold=args.threshold
            )
            return [d.as_dict() for d in found]
    else:
        from acoustack_detector.remote_model import RemoteModel

        remote = RemoteModel(target, send_audio=not args.by_path)
        remote.check()  # a server that is not there is one error, not one per file

        def detect(path: Path) -> list[dict]:
            recording = file_recording(path, args.time_expansion)
            output = remote.run(recording)
            threshold = args.threshold or 0.0
            return [
                detection_row(d, recording.duration_s)
                for d in output.detections
                if d.detection_score >= threshold
            ]

    show_progress = len(files) >= PROGRESS_FROM_FILES and sys.stderr.isatty()
    failures: list[tuple[Path, str]] = []
    for done, path in enumerate(files, 1):
        try:
            detections = detect(path)
        except AcoustackError as exc:
            failures.append((path, str(exc)))
            continue
        finally:
            if show_progress:
                progress(done, len(files), path.name)
        if args.json:
            print(json.dumps({"file": str(path), "detections": detections}), flush=True)
        else:
            print(f"{paint(str(path), '1', sys.stdout)}: {len(detections)} detections")
            for d in detections:
                print(
                    f"  {d['start_time']:8.4f}-{d['end_time']:8.4f} s  "
                    f"{d['low_freq'] / 1000:6.1f}-{d['high_freq'] / 1000:6.1f} kHz  "
                    f"det {d['det_prob']:.3f}  {d['class']} ({d['class_prob'] or 0:.3f})"
                )
    if remote is not None:
        remote.close()
    for path, why in failures:
        error(why if str(path) in why else f"{path}: {why}")
    if failures:
        error(
            f"{len(failures)} of {len(files)} files could not be read (the others were processed)"
        )
        return 1
    return 0


def model_check_doc() -> str:
    from acoustack_detector import model_check

    return model_check.__doc__.split("\n\n")[0]


def model_target(text: str) -> str | None:
    """host:port from grpc://host:port (or a bare host:port); None when it is neither."""
    rest = text.removeprefix("grpc://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or "/" in rest or not 0 < int(port) < 65536:
        return None
    return rest


def run_model_check(args: argparse.Namespace) -> int:
    from acoustack_detector.model_check import ModelCheck, Verdict

    target = model_target(args.target)
    if target is None:
        error(f"{args.target!r} is not grpc://HOST:PORT (e.g. grpc://127.0.0.1:50061)")
        return 2
    if args.recordings_dir is not None and not args.recordings_dir.is_dir():
        error(f"--recordings-dir {args.recordings_dir}: not a folder")
        return 2
    print(f"checking the model server at {target} against the Model contract")
    report = ModelCheck(target, recordings_dir=args.recordings_dir, long_s=args.long_s).run()
    colours = {Verdict.PASS: "32", Verdict.WARN: "33", Verdict.FAIL: "1;31"}
    for check in report.checks:
        verdict = paint(f"{check.verdict.value:<4}", colours[check.verdict], sys.stdout)
        print(f"{verdict} {check.name:<27} {check.what}")
        if check.fix and check.verdict is not Verdict.PASS:
            print(f"     {'':<27} fix: {check.fix}")
    counts = {v: sum(c.verdict is v for c in report.checks) for v in Verdict}
    print(
        f"{counts[Verdict.PASS]} passed, {counts[Verdict.WARN]} warnings, "
        f"{counts[Verdict.FAIL]} failed"
    )
    return 1 if report.failed else 0


def file_recording(path: Path, time_expansion: float):
    """A file on disk as the recording a model server is asked about (its rate and duration from
    its header, in real units)."""
    import datetime as dt
    import uuid

    from pydantic import ValidationError

    from acoustack import schema
    from acoustack.errors import InvalidArgumentError, validation_message
    from acoustack_detector.wav import WavFile

    with WavFile.open(path) as wav:
        fmt = wav.format
    real_rate = fmt.samplerate_hz * time_expansion
    try:
        return schema.Recording(
            deployment_id=uuid.uuid4(),
            device_id="acoustack-detect",
            path=str(path.resolve()),
            started_at=dt.datetime.now(dt.UTC),
            duration_s=fmt.frames / real_rate,
            capture_samplerate_hz=round(real_rate),
            channels=fmt.channels,
            time_expansion=time_expansion,
        )
    except ValidationError as exc:  # e.g. a capture rate (header x expansion) past the limit
        raise InvalidArgumentError(
            f"{path} at time expansion {time_expansion:g}: {validation_message(exc, 'recording')}"
        ) from None


CLASS_TAG_KEYS = ("species", "class")  # the tag shown as a detection's class, in this order


def detection_row(detection, duration_s: float) -> dict:
    """A model server's detection in batdetect2's field names and rounding (what `acoustack detect`
    prints for the bundled model): class is the species tag (else the class tag, else the most
    confident tag), class_prob its confidence. A presence detection spans the recording (from 0 s
    to its duration; frequencies 0: unknown)."""
    tags = sorted(detection.tags, key=lambda t: -t.confidence)
    top = next((t for key in CLASS_TAG_KEYS for t in tags if t.tag.key == key), None)
    top = top or (tags[0] if tags else None)
    box = detection.box
    return {
        "start_time": round(box.start_time_s, 4) if box else 0.0,
        "end_time": round(box.end_time_s, 4) if box else round(duration_s, 4),
        "low_freq": int(box.low_freq_hz) if box else 0,
        "high_freq": int(box.high_freq_hz) if box else 0,
        "class": top.tag.value if top else "",
        "class_prob": round(top.confidence, 3) if top else None,
        "det_prob": round(detection.detection_score, 3),
    }
