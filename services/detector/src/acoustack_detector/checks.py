"""The detector's self-check (`acoustack check`, and before a deployment starts): can the model the
program's `detection` section names run now?"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acoustack.errors import AcoustackError, InvalidArgumentError
from acoustack.program_config import DetectionConfig, read_section
from acoustack.self_check import CheckResult
from acoustack_detector.audio_model import AudioModel
from acoustack_detector.local_model import LocalModel
from acoustack_detector.remote_model import RemoteModel


def self_check(
    bundled: Callable[[], AudioModel], check_file: Path | None, program_config: dict[str, Any]
) -> list[CheckResult]:
    """The bundled model on a known recording (or synthetic noise), or the model server the
    section names answering."""
    try:
        section = read_section(program_config, "detection", DetectionConfig) or DetectionConfig()
    except InvalidArgumentError as exc:
        return [CheckResult("model", False, str(exc))]
    results = [model_check("model", section.model, bundled, check_file)]
    for i, extra in enumerate(section.extra_models):
        result = model_check(f"extra_models[{i}]", extra.model, bundled, check_file)
        if not extra.required and not result.ok:  # an optional model does not stop a deployment
            result = CheckResult(
                result.component, True, f"optional, not available now: {result.detail}"
            )
        results.append(result)
    return results


def model_check(
    name: str, model: str, bundled: Callable[[], AudioModel], check_file: Path | None
) -> CheckResult:
    started = time.monotonic()
    if model != "batdetect2":
        remote = RemoteModel(model.removeprefix("grpc://"))
        try:
            remote.check()
            info = remote.info()
        except AcoustackError as exc:
            return CheckResult(name, False, str(exc))
        finally:
            remote.close()
        return CheckResult(name, True, f"model server {remote.target} answers: {info.name} "
                           f"{info.version}")  # fmt: skip
    try:
        loaded = bundled()
        if check_file is not None:
            LocalModel(loaded, check_file=check_file).check()
            found = len(loaded.detect_file(check_file))
            what = f"found {found} call(s) in {check_file.name}"
        else:
            # No known recording: the model must at least run on audio end to end.
            from acoustack_detector.batdetect2.model import faint_noise

            found = len(loaded.detect_audio(faint_noise(256_000, 0.01), 256_000))
            what = f"ran on 1 s of synthetic noise ({found} detections); set DETECTOR_CHECK_FILE "
            what += "to check against a known recording"
    except (AcoustackError, OSError) as exc:
        return CheckResult(name, False, str(exc))
    elapsed = time.monotonic() - started
    return CheckResult(name, True, f"{loaded.name} {loaded.version} {what} in {elapsed:.1f} s")
