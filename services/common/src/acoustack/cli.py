"""`acoustack`: the command line. Each service adds its own subcommands through the entry-point
group ``acoustack.commands`` (a function that takes argparse's subparsers), so the CLI offers what is
installed, and a third-party program can add commands of its own.

Errors: one line naming the problem and the fix, exit status 2 for usage, 1 for failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points

from acoustack.errors import AcoustackError

GROUP = "acoustack.commands"


def use_colour(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str, stream=None) -> str:
    """Colour ``text`` when ``stream`` (default: stdout) is a terminal."""
    return f"\033[{code}m{text}\033[0m" if use_colour(stream or sys.stdout) else text


def error(message: str) -> None:
    print(f"{paint('error:', '1;31', sys.stderr)} {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acoustack", description="acoustack: bioacoustic sensor services."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except AcoustackError as exc:
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
