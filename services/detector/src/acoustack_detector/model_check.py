"""`acoustack model check grpc://host:port`: a model server against the `Model` contract.

What an implementer runs before pointing a detector at their server. Each check calls the server
as the detector (or another client) would, on a synthetic recording of bat-like sweeps, and gives
a verdict: PASS, WARN (works, but not as the detector's defaults need) or FAIL, with what is wrong
and how to fix it. The exit status is 1 when any check fails.

The checks: health; Info; Detect with inline audio; Detect by path (where the server can see the
folder the check writes to); DetectStream in odd-sized chunks; a time-expanded recording (inline and
by path) giving the same real-time boxes; bad requests answered INVALID_ARGUMENT; a long streamed
recording answered within the detector's deadline.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import grpc
import numpy as np

from acoustack.healthcheck import check as health_check
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack.v1 import types_pb2 as pb
from acoustack_detector.output_check import output_problems, summary
from acoustack_detector.remote_model import CALL_TIMEOUT_S, OUTCOMES

CAPTURE_RATE_HZ = 384_000
SIGNAL_S = 1.0
TIME_EXPANSION = 10.0
CALL_STARTS_S = (0.1, 0.3, 0.5, 0.7, 0.9)
ODD_CHUNK_BYTES = 100_001  # not a whole frame: a server must join chunks before reading samples
INFO_TIMEOUT_S = 10.0
CALL_CONTRACT = "proto/acoustack/v1/model.proto"


class Verdict(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass
class Check:
    name: str
    verdict: Verdict
    what: str
    fix: str = ""


@dataclass
class Report:
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.verdict is Verdict.FAIL for c in self.checks)

    def add(self, name: str, verdict: Verdict, what: str, fix: str = "") -> Check:
        check = Check(name, verdict, what, fix)
        self.checks.append(check)
        return check


def bat_calls(
    duration_s: float = SIGNAL_S, rate_hz: int = CAPTURE_RATE_HZ, seed: int = 0
) -> np.ndarray:
    """Faint noise and a 5 ms sweep from 80 to 40 kHz at each of CALL_STARTS_S (repeated each
    second past the first), as 16-bit samples."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, 0.002, int(duration_s * rate_hz))
    t = np.arange(int(0.005 * rate_hz)) / rate_hz
    sweep = np.sin(2 * np.pi * (80e3 * t - 0.5 * (40e3 / 0.005) * t**2)) * np.hanning(len(t))
    for second in range(int(np.ceil(duration_s))):
        for start in CALL_STARTS_S:
            at = int((second + start) * rate_hz)
            if at + len(sweep) <= len(samples):
                samples[at : at + len(sweep)] += 0.3 * sweep
    return np.clip(samples * 32767, -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray, header_rate_hz: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(header_rate_hz)
        wav.writeframes(samples.tobytes())


def recording_proto(path: Path, time_expansion: float, duration_s: float) -> pb.Recording:
    recording = pb.Recording(
        id=str(uuid.uuid4()),
        deployment_id=str(uuid.uuid4()),
        device_id="model-check",
        source_id="default",
        path=str(path),
        duration_s=duration_s,
        capture_samplerate_hz=CAPTURE_RATE_HZ,
        channels=1,
        time_expansion=time_expansion,
        status=pb.RECORDING_STATUS_TEMPORARY,
    )
    recording.started_at.FromDatetime(dt.datetime.now(dt.UTC))
    return recording


def boxes(output: pb.ModelOutput) -> list[tuple[float, float, float, float]]:
    return sorted(
        (d.box.start_time_s, d.box.end_time_s, d.box.low_freq_hz, d.box.high_freq_hz)
        for d in output.detections
        if d.HasField("box")
    )


def difference(expected: pb.ModelOutput, got: pb.ModelOutput) -> str | None:
    """How ``got``'s boxes differ from ``expected``'s (None: the same, within 1 ms + 1 % in time
    and 500 Hz + 2 % in frequency)."""
    a, b = boxes(expected), boxes(got)
    if len(a) != len(b):
        return f"{len(b)} detections instead of {len(a)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for name, u, v, tol in (
            ("start_time_s", x[0], y[0], 0.001 + 0.01 * abs(x[0])),
            ("end_time_s", x[1], y[1], 0.001 + 0.01 * abs(x[1])),
            ("low_freq_hz", x[2], y[2], 500 + 0.02 * abs(x[2])),
            ("high_freq_hz", x[3], y[3], 500 + 0.02 * abs(x[3])),
        ):
            if abs(u - v) > tol:
                return f"box {i} (by start time): {name} {v:.6g} instead of {u:.6g}"
    return None


class ModelCheck:
    def __init__(
        self,
        target: str,
        *,
        recordings_dir: Path | None = None,
        long_s: float = 60.0,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> None:
        self.target = target
        self.recordings_dir = recordings_dir
        self.long_s = long_s
        self.call_timeout_s = call_timeout_s
        self.report = Report(target)
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self.stub = model_pb2_grpc.ModelStub(self.channel)
        self.samples = bat_calls()
        self.realtime: pb.ModelOutput | None = None

    # --- calls ---------------------------------------------------------------------------------

    def _rpc_failure(self, name: str, method: str, exc: grpc.RpcError, fix: str = "") -> None:
        code = exc.code()
        retry, help = OUTCOMES.get(code, (True, ""))
        outcome = "tries the recording again, then fails it" if retry else "fails the recording"
        self.report.add(
            name,
            Verdict.FAIL,
            f"{method} answered {code.name}: {exc.details()} (the detector {outcome})",
            fix or help or f"answer OK with a ModelOutput ({CALL_CONTRACT})",
        )

    def _output(self, name: str, method: str, call: Callable[[], object], duration_s: float):
        """The reply's output when the call succeeds and the output is well formed, else None
        (the check's failure recorded)."""
        try:
            reply = call()
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED) and (
                name.startswith("detect-path")
            ):
                raise
            self._rpc_failure(name, method, exc)
            return None
        if not reply.HasField("model_output"):
            self.report.add(
                name, Verdict.FAIL, f"{method}'s response has no model_output",
                "set model_output, even with no detections",
            )  # fmt: skip
            return None
        problems = output_problems(reply.model_output, duration_s)
        if problems:
            self.report.add(
                name, Verdict.FAIL, f"{method}'s output is malformed: {summary(problems)}",
                "see ModelOutput in proto/acoustack/v1/types.proto",
            )  # fmt: skip
            return None
        return reply.model_output

    def inline(self, samples: np.ndarray, header_rate: int, time_expansion: float):
        header = model_pb2.AudioHeader(
            samplerate_hz=header_rate, channels=1, time_expansion=time_expansion,
            recording_id=str(uuid.uuid4()),
        )  # fmt: skip
        request = model_pb2.DetectRequest(
            audio=model_pb2.AudioData(header=header, pcm_s16le=samples.tobytes())
        )
        return lambda: self.stub.Detect(request, timeout=self.call_timeout_s)

    def streamed(self, samples: np.ndarray, header_rate: int, chunk_bytes: int):
        def parts() -> Iterator[model_pb2.DetectStreamRequest]:
            yield model_pb2.DetectStreamRequest(
                header=model_pb2.AudioHeader(
                    samplerate_hz=header_rate, channels=1, time_expansion=1
                )
            )
            pcm = samples.tobytes()
            for start in range(0, len(pcm), chunk_bytes):
                yield model_pb2.DetectStreamRequest(
                    pcm_s16le_chunk=pcm[start : start + chunk_bytes]
                )

        return lambda: self.stub.DetectStream(parts(), timeout=self.call_timeout_s)

    # --- the checks ----------------------------------------------------------------------------

    def check_health(self) -> None:
        ok, text = health_check(self.target, timeout_s=INFO_TIMEOUT_S)
        if ok:
            self.report.add("health", Verdict.PASS, "grpc.health.v1 says SERVING")
        else:
            self.report.add(
                "health", Verdict.FAIL, f"grpc.health.v1 Check(''): {text}",
                "serve the standard gRPC health service and set '' to SERVING once the model is "
                "loaded: compose and the detector's checks use it",
            )  # fmt: skip

    def check_info(self) -> bool:
        try:
            info = self.stub.Info(model_pb2.InfoRequest(), timeout=INFO_TIMEOUT_S)
        except grpc.RpcError as exc:
            fix = "implement Info" if exc.code() is grpc.StatusCode.UNIMPLEMENTED else ""
            self._rpc_failure("info", "Info", exc, fix)
            return False
        problems = output_problems(pb.ModelOutput(model_name=info.name, model_version=info.version))
        if not info.name:
            problems.insert(0, "name: required, and empty")
        if problems:
            self.report.add(
                "info", Verdict.FAIL, "Info: " + summary(problems).replace("model_", ""),
                "name the model in InfoResponse.name (stable: outputs are kept per name)",
            )  # fmt: skip
            return False
        rate = f"{info.samplerate_hz} Hz" if info.samplerate_hz else "any rate"
        classes = ", ".join(info.classes[:5]) + (" …" if len(info.classes) > 5 else "")
        self.report.add(
            "info", Verdict.PASS,
            f"{info.name} {info.version or '(no version)'}, {rate}, "
            f"{len(info.classes)} classes{': ' + classes if classes else ''}",
        )  # fmt: skip
        return True

    def check_inline(self) -> None:
        started = time.monotonic()
        output = self._output(
            "detect-inline", "Detect(audio)", self.inline(self.samples, CAPTURE_RATE_HZ, 1.0),
            SIGNAL_S,
        )  # fmt: skip
        if output is None:
            return
        elapsed = time.monotonic() - started
        self.realtime = output
        found = len(output.detections)
        self.report.add(
            "detect-inline",
            Verdict.PASS if found else Verdict.WARN,
            f"{found} detections in {SIGNAL_S:g} s of synthetic sweeps at 384 kHz "
            f"({len(CALL_STARTS_S)} calls), in {elapsed * 1000:.0f} ms",
            "" if found else "nothing found: the checks that compare outputs cannot tell much",
        )

    def check_stream(self) -> None:
        output = self._output(
            "detect-stream", "DetectStream",
            self.streamed(self.samples, CAPTURE_RATE_HZ, ODD_CHUNK_BYTES), SIGNAL_S,
        )  # fmt: skip
        if output is None or self.realtime is None:
            return
        differs = difference(self.realtime, output)
        if differs:
            self.report.add(
                "detect-stream", Verdict.FAIL,
                f"the same audio streamed in {ODD_CHUNK_BYTES}-byte chunks gives {differs}",
                "join every pcm_s16le_chunk before reading samples (a chunk may end mid-sample)",
            )  # fmt: skip
        else:
            self.report.add(
                "detect-stream", Verdict.PASS, "streamed in odd-sized chunks: the same output"
            )

    def check_time_expansion(self) -> None:
        header_rate = round(CAPTURE_RATE_HZ / TIME_EXPANSION)
        output = self._output(
            "time-expansion", "Detect(audio, time_expansion=10)",
            self.inline(self.samples, header_rate, TIME_EXPANSION), SIGNAL_S,
        )  # fmt: skip
        if output is None or self.realtime is None:
            return
        differs = difference(self.realtime, output)
        if differs:
            self.report.add(
                "time-expansion", Verdict.FAIL,
                f"the same audio as a time-expanded file (header {header_rate} Hz, "
                f"time_expansion 10) gives {differs}",
                "the real rate is samplerate_hz x time_expansion; return boxes in real time and "
                "real frequencies (model.proto, TIME AND FREQUENCY)",
            )  # fmt: skip
        elif not self.realtime.detections:
            self.report.add(
                "time-expansion", Verdict.WARN, "inconclusive: nothing found in the test signal"
            )
        else:
            self.report.add(
                "time-expansion",
                Verdict.PASS,
                "a time-expanded file gives the same real-time boxes",
            )

    def check_by_path(self) -> None:
        if self.recordings_dir is None:
            with tempfile.TemporaryDirectory(prefix="acoustack-model-check-") as folder:
                self._by_path(Path(folder), given=False)
        else:
            self._by_path(self.recordings_dir.resolve(), given=True)

    def _by_path(self, folder: Path, *, given: bool) -> None:
        header_rate = round(CAPTURE_RATE_HZ / TIME_EXPANSION)
        files = {
            "detect-path": (folder / f"model-check-{uuid.uuid4().hex[:8]}.wav", 1.0),
            "detect-path-time-expansion": (
                folder / f"model-check-te10-{uuid.uuid4().hex[:8]}.wav", TIME_EXPANSION,
            ),
        }  # fmt: skip
        try:
            for name, (path, expansion) in files.items():
                write_wav(path, self.samples, round(CAPTURE_RATE_HZ / expansion))
                request = model_pb2.DetectRequest(
                    recording=recording_proto(path, expansion, SIGNAL_S)
                )
                call = lambda request=request: self.stub.Detect(  # noqa: E731
                    request, timeout=self.call_timeout_s
                )
                try:
                    output = self._output(name, "Detect(recording)", call, SIGNAL_S)
                except grpc.RpcError as exc:  # the server cannot see the folder
                    where = "" if given else " (a temporary folder; give --recordings-dir)"
                    self.report.add(
                        name, Verdict.WARN,
                        f"Detect(recording) answered {exc.code().name}: {exc.details()}{where}",
                        f"the detector's default call names a file: mount the recordings volume "
                        f"in the server at the same path as the detector, or set "
                        f"detection.model_send_audio true; check with --recordings-dir {folder}",
                    )  # fmt: skip
                    return
                if output is None or self.realtime is None:
                    continue
                differs = difference(self.realtime, output)
                if differs:
                    what = f"a WAV file (header {round(CAPTURE_RATE_HZ / expansion)} Hz"
                    what += f", time_expansion {expansion:g}) named by path gives {differs}"
                    fix = (
                        "read Recording.time_expansion: the real rate is the header rate x "
                        "time_expansion, boxes in real time"
                        if expansion != 1
                        else "read the file at Recording.path as the inline audio"
                    )
                    self.report.add(name, Verdict.FAIL, what, fix)
                else:
                    self.report.add(
                        name, Verdict.PASS,
                        f"the file named by path (time_expansion {expansion:g}, header "
                        f"{header_rate if expansion != 1 else CAPTURE_RATE_HZ} Hz): same output",
                    )  # fmt: skip
        finally:
            for path, _ in files.values():
                path.unlink(missing_ok=True)

    def check_bad_requests(self) -> None:
        pcm = self.samples[:3840].tobytes()
        header = model_pb2.AudioHeader
        cases = {
            "no source": lambda: self.stub.Detect(model_pb2.DetectRequest(), timeout=10),
            "samplerate_hz 0": lambda: self.stub.Detect(
                model_pb2.DetectRequest(
                    audio=model_pb2.AudioData(header=header(channels=1), pcm_s16le=pcm)
                ),
                timeout=10,
            ),
            "channels 0": lambda: self.stub.Detect(
                model_pb2.DetectRequest(
                    audio=model_pb2.AudioData(
                        header=header(samplerate_hz=CAPTURE_RATE_HZ), pcm_s16le=pcm
                    )
                ),
                timeout=10,
            ),
            "stream without a header": lambda: self.stub.DetectStream(
                iter([model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm)]), timeout=10
            ),
            "stream with samplerate_hz 0": lambda: self.stub.DetectStream(
                iter(
                    [
                        model_pb2.DetectStreamRequest(header=header(channels=1)),
                        model_pb2.DetectStreamRequest(pcm_s16le_chunk=pcm),
                    ]
                ),
                timeout=10,
            ),
        }
        wrong = []
        for case, call in cases.items():
            try:
                call()
                wrong.append(f"{case}: answered OK")
            except grpc.RpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.OUT_OF_RANGE,
                ):
                    wrong.append(f"{case}: answered {exc.code().name} ({exc.details()})")
        if wrong:
            self.report.add(
                "bad-requests", Verdict.FAIL, "; ".join(wrong),
                "answer INVALID_ARGUMENT naming the field: the detector then fails the recording "
                "at once, where INTERNAL or UNKNOWN are retried 8 times",
            )  # fmt: skip
        else:
            self.report.add(
                "bad-requests", Verdict.PASS, f"{len(cases)} bad requests answered INVALID_ARGUMENT"
            )

    def check_long(self) -> None:
        if self.long_s <= 0:
            return
        samples = bat_calls(self.long_s, seed=1)
        started = time.monotonic()
        try:
            reply = self.streamed(samples, CAPTURE_RATE_HZ, 1024 * 1024)()
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.report.add(
                    "long-recording", Verdict.WARN,
                    f"{self.long_s:g} s ({samples.nbytes / 2**20:.0f} MiB) refused: "
                    f"{exc.details()}",
                    "recordings longer than the server's limit will fail: keep "
                    "recording.duration_s under it",
                )  # fmt: skip
            elif exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                self.report.add(
                    "long-recording", Verdict.FAIL,
                    f"{self.long_s:g} s of audio not answered within {self.call_timeout_s:g} s",
                    "answer within the detector's 120 s deadline: a faster model or shorter "
                    "recordings (recording.duration_s)",
                )  # fmt: skip
            else:
                self._rpc_failure("long-recording", "DetectStream", exc)
            return
        elapsed = time.monotonic() - started
        problems = output_problems(reply.model_output, self.long_s)
        per_s = elapsed * 1000 / self.long_s
        if problems:
            self.report.add(
                "long-recording", Verdict.FAIL, f"malformed output: {summary(problems)}",
                "see ModelOutput in proto/acoustack/v1/types.proto",
            )  # fmt: skip
        elif per_s > 1000:
            self.report.add(
                "long-recording", Verdict.WARN,
                f"{self.long_s:g} s in {elapsed:.1f} s: {per_s:.0f} ms per audio second, slower "
                "than real time", "the detector will fall behind a recorder that records all the time",
            )  # fmt: skip
        else:
            self.report.add(
                "long-recording", Verdict.PASS,
                f"{self.long_s:g} s ({samples.nbytes / 2**20:.0f} MiB streamed) in {elapsed:.1f} s "
                f"({per_s:.0f} ms per audio second)",
            )  # fmt: skip

    def run(self) -> Report:
        self.check_health()
        if self.check_info():
            self.check_inline()
            self.check_stream()
            self.check_time_expansion()
            self.check_by_path()
            self.check_bad_requests()
            self.check_long()
        self.channel.close()
        return self.report
