"""`acoustack detect FILE_OR_DIR... [--threshold T] [--json]`: BatDetect2 on files, in batch.

The bundled model (make model) on every WAV named or found under a named folder. With --json, one
line per file in batdetect2's own field names and units (seconds, Hz). Files that cannot be read are
reported after the rest are processed, and the exit status is then 1.
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
    from acoustack_detector.batdetect2.model import BatDetect2Onnx  # the model loads only when used

    files = list(wav_files(args.paths))
    if not files:
        error("no WAV files found in " + ", ".join(str(p) for p in args.paths))
        return 1
    model = BatDetect2Onnx.load(args.model_dir)
    show_progress = len(files) >= PROGRESS_FROM_FILES and sys.stderr.isatty()
    failures: list[tuple[Path, str]] = []
    for done, path in enumerate(files, 1):
        try:
            found = model.predict_file(
                path, args.time_expansion, channel=args.channel, threshold=args.threshold
            )
        except AcoustackError as exc:
            failures.append((path, str(exc)))
            continue
        finally:
            if show_progress:
                progress(done, len(files), path.name)
        detections = [d.as_dict() for d in found]
        if args.json:
            print(json.dumps({"file": str(path), "detections": detections}), flush=True)
        else:
            print(f"{paint(str(path), '1', sys.stdout)}: {len(detections)} detections")
            for d in detections:
                print(
                    f"  {d['start_time']:8.4f}-{d['end_time']:8.4f} s  "
                    f"{d['low_freq'] / 1000:6.1f}-{d['high_freq'] / 1000:6.1f} kHz  "
                    f"det {d['det_prob']:.3f}  {d['class']} ({d['class_prob']:.3f})"
                )
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
