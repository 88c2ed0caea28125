"""A seeded, bounded fuzzer for our gRPC servers, driven by the service descriptors.

For every method of every service a server offers (read from its descriptors, never listed by
hand), it sends valid requests (the target's seeds), the same requests mutated field by field
(boundary lengths, NUL and control characters, huge strings and lists, NaN and infinity, times
that are no time, bad UUIDs, unknown enum values), and raw bytes that parse as no message. It
fails a run on

- INTERNAL, UNKNOWN or DATA_LOSS (our bugs, or a stored row that can no longer be read);
- details that leak a traceback, SQL or a library's error, or are too large for a client;
- a call slower than the bound;
- health not SERVING afterwards, or a stored row a valid read can no longer return (the target's
  ``readback``).

The same seed gives the same requests. ``run`` stops at a count or a time, whichever comes first.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

# A seed is a request, a function of the run's random generator that makes a fresh one (a new id
# each time, so a store's "created" path is taken again and again), or, for a client-streaming
# method, a list of either.
Seed = Message | Callable[[random.Random], Message] | list[Any]

FAILING_CODES = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
# What must never reach a client: our internals. (The fuzzer's own strings avoid these words.)
_LEAK = re.compile(
    r"Traceback|File \"|psycopg|pydantic|ValidationError|DecodeError|Exception calling|"
    r"Exception deserializing|Exception iterating|\bSELECT\b.+\bFROM\b|\bINSERT INTO\b|"
    r"\bUPDATE \w+ SET\b|\bDELETE FROM\b|syntax error at or near|UniqueViolation|"
    r"ForeignKeyViolation|DataError|KeyError|AttributeError|TypeError|RecursionError|"
    r"OverflowError|ZeroDivisionError",
    re.S,
)
MAX_DETAILS_BYTES = 2000
# The largest value and the largest request the fuzzer makes (the servers take 64 MiB).
_MAX_VALUE = 2_000_000
_MAX_REQUEST_BYTES = 16 << 20
_TIMESTAMP = "google.protobuf.Timestamp"


@dataclass
class Target:
    """A running server to fuzz."""

    name: str
    address: str
    services: Sequence[Any]  # ServiceDescriptor
    seeds: dict[str, list[Seed]]  # method full name -> valid requests
    # Problems found by reading back every stored record with valid requests.
    readback: Callable[[], list[str]] = lambda: []
    # Fields whose value the server waits for (a timeout it honours): method full name -> field
    # -> (the most the fuzzer lets it wait, the largest value the server accepts). A value the
    # server would accept is lowered to the first, so no call legitimately takes long; values
    # it must refuse are sent as they are.
    wait_fields: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    method: str
    kind: str
    detail: str
    request: str = ""

    def __str__(self) -> str:
        text = f"{self.method}: {self.kind}: {self.detail}"
        return f"{text}\n    request: {self.request}" if self.request else text


@dataclass
class Report:
    target: str
    seed: int
    calls: int = 0
    codes: Counter = field(default_factory=Counter)
    by_method: Counter = field(default_factory=Counter)
    method_codes: Counter = field(default_factory=Counter)  # (method, code) -> calls
    examples: dict = field(default_factory=dict)  # (method, code) -> the first details seen
    failures: list[Failure] = field(default_factory=list)
    duration_s: float = 0.0
    slowest_s: float = 0.0
    slowest: str = ""  # the slowest call's method and request

    def summary(self) -> str:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(self.codes.items()))
        return (
            f"fuzz {self.target}: {self.calls} calls to {len(self.by_method)} methods in "
            f"{self.duration_s:.1f} s (seed {self.seed}, slowest call {self.slowest_s:.2f} s): "
            f"{codes}; {len(self.failures)} failure(s)"
        )


# --- hostile values -------------------------------------------------------------------------

_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31mred",
    "line\nbreak",
    "tab\there",
    "\r\n",
    "\u2028",
    "\ufeff",
    "\u202eevil",
    "e\u0301",
    "🦇" * 3,
    "é" * 1001,
    "..",
    "/",
    "../../etc/passwd",
    "/dev/null",
    "' OR 1=1 --",
    "'; DROP TABLE recordings; --",
    "%s%s%n",
    "{0}{1}",
    "${jndi:ldap://127.0.0.1/x}",
    "null",
    "[]",
    "{}",
    "NaN",
    "1e999",
    "-1",
    "[" * 100_000,
    '{"a":' * 2_000,
    '{"detection": {"model": 5}}',
    '{"recording": []}',
    '{"recording": {"duration_s": 1e999}}',
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "urn:uuid:00000000-0000-0000-0000-000000000001",
]
_LENGTHS = [199, 200, 201, 999, 1000, 1001, 1999, 2000, 2001, 20_000, 100_001, 1_000_001]
_INTS32 = [0, 1, -1, 2, 7, 99, 2**31 - 1, -(2**31), 2**31 - 2, 65, 1000, 10_000, 10_001]
_INTS64 = [0, -1, 2**63 - 1, -(2**63), 2**53 + 1]
_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    1e308,
    -1e308,
    5e-324,
    1.0,
    0.5,
    1 + 1e-9,
    -1e-9,
    1e-300,
    90.0,
    90.000001,
    180.5,
    86_400.0,
    86_400.5,
    1000.0,
    1000.1,
    2e6,
]
_SECONDS = [
    253_402_300_800,
    -62_135_596_801,
    253_402_300_799,
    -62_135_596_800,
    2**62,
    -(2**62),
    0,
    -1,
    -2_208_988_801,  # a second before 1900
    32_503_680_000,  # 3000-01-01
    1_780_000_000,
]
_NANOS = [0, -1, 1_000_000_000, 999_999_999, 2**31 - 1]


def _uuid_like(rng: random.Random) -> str:
    text = str(uuid.UUID(int=rng.getrandbits(128)))
    return rng.choice(
        [text, text.upper(), "{" + text + "}", text.replace("-", ""), text[:-1], text + "0"]
    )


def _string(rng: random.Random, current: str) -> str:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(_STRINGS)
    if roll < 0.55:
        return rng.choice("x/é🦇\x00") * rng.choice(_LENGTHS)
    if roll < 0.65:
        return _uuid_like(rng)
    if not current:
        return rng.choice(_STRINGS)
    if roll < 0.75:
        return current[: rng.randrange(len(current) + 1)]
    if roll < 0.85:
        at = rng.randrange(len(current) + 1)
        return current[:at] + rng.choice(["\x00", "\x07", "\n", "\x7f", "\x9b"]) + current[at:]
    return current * min(rng.choice([2, 100, 5000]), _MAX_VALUE // len(current))


def _bytes(rng: random.Random, current: bytes) -> bytes:
    roll = rng.random()
    if roll < 0.2:
        return b""
    if roll < 0.4:
        return rng.randbytes(rng.choice([1, 3, 7, 64, 1001]))
    if roll < 0.5:
        return b"\x00" * rng.choice([1, 2, 1_000, 100_000])
    if roll < 0.6:
        return b"\x7f\xff\x00\x80" * rng.choice([1, 1000, 50_000])
    if current and roll < 0.8:
        return current[: rng.randrange(len(current) + 1)]
    return current + rng.randbytes(rng.choice([1, 3]))


def _scalar(rng: random.Random, fd: FieldDescriptor, current: Any) -> Any:
    kind = fd.type
    if kind == fd.TYPE_STRING:
        return _string(rng, current or "")
    if kind == fd.TYPE_BYTES:
        return _bytes(rng, current or b"")
    if kind == fd.TYPE_BOOL:
        return not current
    if kind in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT):
        if rng.random() < 0.8:
            return rng.choice(_FLOATS)
        return (current or 1.0) * rng.choice([-1, 0.5, 1.5, 10, 1e6])
    if kind == fd.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        return rng.choice([*known, 99, -1, 2**31 - 1])
    if kind in (fd.TYPE_INT64, fd.TYPE_SINT64, fd.TYPE_SFIXED64):
        return rng.choice(_INTS64)
    if kind in (fd.TYPE_UINT32, fd.TYPE_FIXED32):
        return rng.choice([0, 1, 2**32 - 1])
    if kind in (fd.TYPE_UINT64, fd.TYPE_FIXED64):
        return rng.choice([0, 1, 2**64 - 1])
    return rng.choice([*_INTS32, (current or 0) + 1, (current or 0) - 1])


def _timestamp(rng: random.Random, ts: Message) -> None:
    if rng.random() < 0.6:
        ts.seconds = rng.choice(_SECONDS)
    if rng.random() < 0.6:
        ts.nanos = rng.choice(_NANOS)


def _mutate_field(rng: random.Random, msg: Message, fd: FieldDescriptor, depth: int) -> None:
    name = fd.name
    if fd.is_repeated:
        items = getattr(msg, name)
        roll = rng.random()
        if roll < 0.15:
            msg.ClearField(name)
        elif fd.message_type is not None:
            if items and roll < 0.35:  # many copies of one element
                template = items[rng.randrange(len(items))]
                room = _MAX_REQUEST_BYTES // 2 // max(1, template.ByteSize())
                for _ in range(min(rng.choice([2, 100, 2_000]), room)):
                    items.add().CopyFrom(template)
            elif items and roll < 0.75:
                mutate(rng, items[rng.randrange(len(items))], depth + 1)
            else:
                mutate(rng, items.add(), depth + 1)
        else:
            if roll < 0.35:
                value = _scalar(rng, fd, items[0] if items else None)
                size = len(value) if isinstance(value, str | bytes) else 8
                room = _MAX_REQUEST_BYTES // 2 // max(1, size)
                items.extend([value] * min(rng.choice([2, 100, 10_001]), room))
            elif items and roll < 0.6:
                at = rng.randrange(len(items))
                items[at] = _scalar(rng, fd, items[at])
            else:
                items.append(_scalar(rng, fd, None))
        return
    if fd.message_type is not None:
        sub = getattr(msg, name)
        roll = rng.random()
        if roll < 0.15:
            msg.ClearField(name)
        elif roll < 0.25:
            sub.Clear()
            sub.SetInParent()
        elif fd.message_type.full_name == _TIMESTAMP:
            _timestamp(rng, sub)
        else:
            mutate(rng, sub, depth + 1)
        return
    current = getattr(msg, name)
    with contextlib.suppress(ValueError, TypeError):  # a value the field's type cannot hold
        setattr(msg, name, _scalar(rng, fd, current))


def mutate(rng: random.Random, msg: Message, depth: int = 0) -> None:
    """Change one to three fields of ``msg`` in place (recursing into sub-messages)."""
    fields = list(msg.DESCRIPTOR.fields)
    if not fields or depth > 4:
        return
    for _ in range(rng.choice([1, 1, 2, 3])):
        _mutate_field(rng, msg, rng.choice(fields), depth)


def _string_field_numbers(descriptor: Descriptor) -> list[int]:
    return [f.number for f in descriptor.fields if f.type == f.TYPE_STRING]


def garbage(rng: random.Random, descriptor: Descriptor, valid: bytes) -> bytes:
    """Bytes that parse as no message of ``descriptor``'s type (mostly; random bytes may)."""
    roll = rng.random()
    if roll < 0.2:
        return rng.randbytes(rng.randrange(1, 200))
    if roll < 0.3:
        return b"\x08" + b"\xff" * 10 + b"\x01"  # a varint longer than ten bytes
    if roll < 0.4:
        return b"\x0a\xff\xff\xff\xff\x0f" + rng.randbytes(8)  # a length far past the end
    if roll < 0.5:
        return rng.choice([b"\x0b", b"\x0c", b"\x00\x00", b"\x0f"])  # groups, field 0, type 7
    if roll < 0.65:
        strings = _string_field_numbers(descriptor)
        number = rng.choice(strings) if strings else 1
        return _tag(number, 2) + b"\x03\xff\xfe\xc0"  # a string that is not UTF-8
    if valid and roll < 0.85:
        cut = rng.randrange(1, len(valid) + 1) if len(valid) > 1 else 1
        return valid[: cut - 1] + bytes([valid[cut - 1] ^ 0xFF])
    return valid + rng.choice([b"\x0a\x05ab", b"\xff", b"\x12"])


def _tag(number: int, wire_type: int) -> bytes:
    value = (number << 3) | wire_type
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --- running --------------------------------------------------------------------------------


def _fresh(rng: random.Random, seed: Any) -> Message:
    message = seed(rng) if callable(seed) else seed
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _describe(request: Any) -> str:
    if isinstance(request, bytes | bytearray):
        return f"raw bytes {bytes(request[:60])!r}{'…' if len(request) > 60 else ''}"
    if isinstance(request, list):
        return "stream of " + "; ".join(_describe(part) for part in request[:3])
    text = text_format.MessageToString(request, as_one_line=True)
    return text if len(text) <= 300 else text[:300] + f"… ({len(text)} characters)"


def _lower_waits(msg: Message, waits: dict[str, tuple[float, float]]) -> None:
    for name, (cap, accepted) in waits.items():
        value = getattr(msg, name)
        if value == 0 or (math.isfinite(value) and cap < value <= accepted):
            setattr(msg, name, cap)


def _with_waits_lowered(part: Any, descriptor: Descriptor, waits) -> Any:
    """``part`` with its waits lowered; garbage that happens to parse (an unknown field, say)
    asks for the server's default wait as surely as an empty request does."""
    if isinstance(part, Message):
        _lower_waits(part, waits)
        return part
    try:
        parsed = descriptor._concrete_class.FromString(part)
    except Exception:
        return part  # no message: the server refuses it before it waits for anything
    _lower_waits(parsed, waits)
    return parsed.SerializeToString()  # unknown fields included


@dataclass
class _Method:
    service: str
    descriptor: MethodDescriptor

    @property
    def full_name(self) -> str:
        return self.descriptor.full_name

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.descriptor.name}"


class Fuzzer:
    def __init__(
        self,
        target: Target,
        *,
        seed: int,
        max_calls: int,
        max_seconds: float,
        call_bound_s: float = 5.0,
    ) -> None:
        self.target = target
        self.rng = random.Random(seed)
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.call_bound_s = call_bound_s
        self.report = Report(target.name, seed)
        self.methods = [
            _Method(service.full_name, method)
            for service in [*target.services, health_pb2.DESCRIPTOR.services_by_name["Health"]]
            for method in service.methods
        ]

    def run(self) -> Report:
        started = time.monotonic()
        # As our own clients allow (acoustack.clients): a large answer is no failure.
        options = [
            ("grpc.max_send_message_length", 128 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ]
        with grpc.insecure_channel(self.target.address, options=options) as channel:
            for method in self.methods:
                if method.full_name not in self.target.seeds and not method.full_name.startswith(
                    "grpc.health"
                ):
                    self._fail(method, "no seed", "no valid request to start from: add one")
            # Every method in turn; the health service's, the same on every server, a quarter
            # as often as the server's own.
            own = [m for m in self.methods if not m.service.startswith("grpc.health")]
            turns = own * 4 + [m for m in self.methods if m.service.startswith("grpc.health")]
            # The stored state is read back and health asked at checkpoints too, since a later
            # valid call may overwrite a bad row before the end.
            checkpoint = max(250, self.max_calls // 4)
            index = 0
            while (
                self.report.calls < self.max_calls and time.monotonic() - started < self.max_seconds
            ):
                self._one_call(channel, turns[index % len(turns)])
                index += 1
                if index % checkpoint == 0:
                    self._check_state(channel)
            self._check_state(channel)
        self.report.duration_s = time.monotonic() - started
        return self.report

    # requests

    def _seeds(self, method: _Method) -> list[Any]:
        found = self.target.seeds.get(method.full_name)
        if found:
            return found
        if method.full_name.startswith("grpc.health"):
            return [
                health_pb2.HealthCheckRequest(service=s.full_name) for s in self.target.services
            ]
        return [method.descriptor.input_type._concrete_class()]

    def _request(self, method: _Method) -> Any:
        """A valid, mutated or garbage request (a list of parts for a client stream)."""
        seed = self.rng.choice(self._seeds(method))
        parts = seed if isinstance(seed, list) else [seed]
        messages = [_fresh(self.rng, part) for part in parts]
        roll = self.rng.random()
        descriptor = method.descriptor.input_type
        if roll < 0.15:  # garbage in place of one part
            at = self.rng.randrange(len(messages))
            messages[at] = garbage(self.rng, descriptor, messages[at].SerializeToString())
        elif roll < 0.25:
            pass  # the valid request itself
        elif method.descriptor.client_streaming and roll < 0.4:
            messages = self._reshape_stream(messages)
        else:
            mutate(self.rng, messages[self.rng.randrange(len(messages))])
        waits = self.target.wait_fields.get(method.full_name)
        if waits:
            messages = [_with_waits_lowered(part, descriptor, waits) for part in messages]
        return messages if method.descriptor.client_streaming else messages[0]

    def _reshape_stream(self, messages: list[Message]) -> list[Message]:
        roll = self.rng.random()
        if roll < 0.3:
            return []
        if roll < 0.5:
            return messages[1:]  # no header first
        if roll < 0.7:
            return [messages[0], *messages]  # the header twice
        return messages * self.rng.choice([2, 10])

    # calls

    def _one_call(self, channel: grpc.Channel, method: _Method) -> None:
        request = self._request(method)
        # Serialized here, so a request the fuzzer cannot encode is its own error, not a call's.
        parts = [_encode(p) for p in (request if isinstance(request, list) else [request])]
        if sum(map(len, parts)) > _MAX_REQUEST_BYTES * 4:
            raise AssertionError(f"the fuzzer made a request of {sum(map(len, parts))} bytes")
        streaming_in = method.descriptor.client_streaming
        streaming_out = method.descriptor.server_streaming
        kind = (streaming_in, streaming_out)
        factory = {
            (False, False): channel.unary_unary,
            (True, False): channel.stream_unary,
            (False, True): channel.unary_stream,
            (True, True): channel.stream_stream,
        }[kind]
        call = factory(method.path, request_serializer=None, response_deserializer=None)
        deadline = self.call_bound_s * 2
        started = time.monotonic()
        code, details = grpc.StatusCode.OK, ""
        try:
            argument = iter(parts) if streaming_in else parts[0]
            if streaming_out:
                responses = call(argument, timeout=deadline)
                for _ in _first(responses, 1):  # a health Watch stays open
                    pass
                responses.cancel()
            else:
                call(argument, timeout=deadline)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
        elapsed = time.monotonic() - started
        self.report.calls += 1
        self.report.by_method[method.full_name] += 1
        if code is grpc.StatusCode.CANCELLED and streaming_out:
            code = grpc.StatusCode.OK  # we cancelled a stream that stays open (health Watch)
        self.report.codes[code.name] += 1
        self.report.method_codes[(method.full_name, code.name)] += 1
        self.report.examples.setdefault((method.full_name, code.name), details[:200])
        if elapsed > self.report.slowest_s:
            self.report.slowest_s = elapsed
            self.report.slowest = f"{method.full_name} {code.name}: {_describe(request)}"
        self._judge(method, request, code, details, elapsed)

    def _judge(self, method, request, code, details, elapsed) -> None:
        if code in FAILING_CODES:
            self._fail(method, code.name, details, request)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED or elapsed > self.call_bound_s:
            self._fail(method, "slow", f"{elapsed:.2f} s ({code.name})", request)
        leak = _LEAK.search(details)
        if leak:
            self._fail(method, "leak", f"{leak.group()!r} in {details[:300]!r}", request)
        if len(details.encode()) > MAX_DETAILS_BYTES or (
            code is grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata" in details
        ):
            self._fail(method, "details too large", details[:200], request)

    def _fail(self, method: _Method, kind: str, detail: str, request: Any = None) -> None:
        described = "" if request is None else _describe(request)
        self.report.failures.append(Failure(method.full_name, kind, detail, described))

    def _check_state(self, channel: grpc.Channel) -> None:
        self._check_health(channel)
        for problem in self.target.readback():
            failure = Failure(self.target.name, "readback", problem)
            if failure not in self.report.failures:
                self.report.failures.append(failure)

    def _check_health(self, channel: grpc.Channel) -> None:
        from grpc_health.v1 import health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(channel)
        for name in ["", *(s.full_name for s in self.target.services)]:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            except grpc.RpcError as exc:
                status = exc.code().name
            failure = Failure(name or "(server)", "health", f"not SERVING: {status}")
            if status != health_pb2.HealthCheckResponse.SERVING and (
                failure not in self.report.failures
            ):
                self.report.failures.append(failure)


def _encode(part: Any) -> bytes:
    return part if isinstance(part, bytes | bytearray) else part.SerializeToString()


def _first(iterator: Iterator, n: int) -> Iterator:
    for i, item in enumerate(iterator):
        yield item
        if i + 1 >= n:
            return


def fuzz(target: Target, *, seed: int, calls: int, seconds: float, call_bound_s: float) -> Report:
    return Fuzzer(
        target, seed=seed, max_calls=calls, max_seconds=seconds, call_bound_s=call_bound_s
    ).run()
