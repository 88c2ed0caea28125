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
