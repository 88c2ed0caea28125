"""`acoustack devices`: the input devices this machine has, with channels and default rate."""

from __future__ import annotations

import argparse
import json

from acoustack_recorder.sources import list_input_devices


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("devices", help="list audio input devices (microphones)")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    devices = list_input_devices()
    if args.json:
        for d in devices:
            print(json.dumps({"index": d.index, "name": d.name, "channels": d.max_input_channels,
                              "default_samplerate_hz": d.default_samplerate_hz}))  # fmt: skip
        return 0
    if not devices:
        print(
            "no input devices found (is the microphone plugged in? is the container given /dev/snd?)"
        )
        return 1
    print(f"{'index':>5}  {'channels':>8}  {'default rate':>12}  name")
    for d in devices:
        print(
            f"{d.index:>5}  {d.max_input_channels:>8}  {d.default_samplerate_hz / 1000:>9g} kHz  {d.name}"
        )
    return 0
