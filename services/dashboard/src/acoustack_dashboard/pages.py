"""What each page shows, gathered from storage and the scheduler over their gRPC contracts and
from the recordings volume: plain functions over the clients, no HTTP in here."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import time
import uuid
import zoneinfo
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from acoustack import schema
from acoustack.clients import GrpcClient, RetryPolicy, StoreClient
from acoustack.errors import AcoustackError, InvalidArgumentError, NotFoundError, quote
from acoustack.v1 import control_pb2, control_pb2_grpc
from acoustack.v1 import store_pb2 as spb
from acoustack.v1 import types_pb2 as pb
from acoustack_dashboard import audio, spectrogram

# The tag key the bundled BatDetect2 (and acoupi's models) put the species under.
SPECIES_TAG_KEY = "species"
PAGE_SIZE = 50
CSV_PAGE_SIZE = 2000
# Calls that wait for work: the checks (a test recording, the model) and a stop's flush (its
# default 120 s, as in control.proto).
LONG_CALL_S = 180.0
DEFAULT_FLUSH_S = 120.0


class ControlClient(GrpcClient):
    """The scheduler's Control API (proto/acoustack/v1/control.proto)."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        kwargs.setdefault("retry", RetryPolicy(budget_s=3.0))
        super().__init__(target, **kwargs)
        self.stub = control_pb2_grpc.ControlStub(self.channel)

    def status(self) -> control_pb2.GetStatusResponse:
        return self.call(self.stub.GetStatus, control_pb2.GetStatusRequest(), name="GetStatus")

    def _long(self, method: Any, timeout_s: float) -> Any:
        """A call that waits for work (checks, a flush) longer than the client's usual timeout."""
        return lambda request, timeout: method(request, timeout=max(timeout, timeout_s))

    def start_deployment(
        self, name: str, latitude: float | None, longitude: float | None, skip_checks: bool
    ) -> control_pb2.ControlStartDeploymentResponse:
        request = control_pb2.ControlStartDeploymentRequest(
            name=name, latitude=latitude, longitude=longitude, skip_checks=skip_checks
        )
        # The checks make a test recording and run the model: allow them a few minutes.
        method = self._long(self.stub.StartDeployment, LONG_CALL_S)
        return self.call(method, request, name="StartDeployment")

    def stop_deployment(
        self, flush_timeout_s: float = 0.0
    ) -> control_pb2.ControlStopDeploymentResponse:
        request = control_pb2.ControlStopDeploymentRequest(flush_timeout_s=flush_timeout_s)
        wait_s = (flush_timeout_s or DEFAULT_FLUSH_S) + LONG_CALL_S
        return self.call(
            self._long(self.stub.StopDeployment, wait_s), request, name="StopDeployment"
        )

    def retry_dead_letters(self) -> list[str]:
        """Every dead letter due again (`acoustack messages retry --all-dead`); the ids retried."""
        request = control_pb2.ControlRetryMessagesRequest(all_dead=True)
        return list(self.call(self.stub.RetryMessages, request, name="RetryMessages").message_ids)

    def config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The whole program configuration and its JSON Schema."""
        reply = self.call(self.stub.GetConfig, control_pb2.GetConfigRequest(), name="GetConfig")
        return json.loads(reply.value_json), json.loads(reply.schema_json or "{}")

    def config_field(self, field: str) -> Any:
        request = control_pb2.GetConfigRequest(field=field)
        return json.loads(self.call(self.stub.GetConfig, request, name="GetConfig").value_json)

    def set_config(self, changes: list[tuple[str, str]]) -> dict[str, Any]:
        request = control_pb2.SetConfigRequest(
            changes=[control_pb2.ConfigChange(field=f, value=v) for f, v in changes]
        )
        return json.loads(self.call(self.stub.SetConfig, request, name="SetConfig").value_json)

    def run_checks(self) -> list[Any]:
        # The checks include a test recording: give them the time a recording takes.
        reply = self.call(self.stub.RunChecks, control_pb2.RunChecksRequest(), name="RunChecks")
        return list(reply.checks)


def when(timestamp: Any) -> dt.datetime | None:
    """A proto Timestamp as an aware datetime (None when unset)."""
    if timestamp is None or (timestamp.seconds == 0 and timestamp.nanos == 0):
        return None
    return timestamp.ToDatetime(tzinfo=dt.UTC)


def best_tag(tags: Any) -> tuple[str, float]:
    """The most confident species (else any tag) and its confidence."""
    ranked = sorted(tags, key=lambda t: (t.tag.key != SPECIES_TAG_KEY, -t.confidence))
    return (ranked[0].tag.value, ranked[0].confidence) if ranked else ("", 0.0)


def device_uptime_s(proc_uptime: Path = Path("/proc/uptime")) -> float | None:
    try:
        return float(proc_uptime.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def overview(control: ControlClient) -> dict[str, Any]:
    status = control.status()
    last_detection = None
    output = status.last_model_output
    if output.id and output.detections:
        top = max(output.detections, key=lambda d: d.detection_score)
        label, _ = best_tag(top.tags)
        last_detection = {
            "recording_id": output.recording_id,
            "label": label or output.model_name,
            "score": top.detection_score,
            "count": len(output.detections),
            "at": when(output.created_at),
        }
    return {
        "device": status,
        "verdict": status.device_status or "unknown",
        "ok": status.device_status == "ok",
        "deployment": status.deployment if status.deployment.id else None,
        "deployment_started": when(status.deployment.started_at),
        "last_recording": status.last_recording if status.last_recording.id else None,
        "last_recording_at": when(status.last_recording.started_at),
        "last_detection": last_detection,
        "last_message": status.last_message_sent if status.last_message_sent.message_id else None,
        "last_message_at": when(status.last_message_sent.received_at),
        "uptime_s": device_uptime_s(),
        "retention": retention_state(control, status),
    }


def retention_state(control: ControlClient, status: Any = None) -> str:
    """What retention is set to do and what it did in the last day, in a few words (what it would
    delete next: /files)."""
    try:
        section = control.config_field("file_management")
    except AcoustackError:
        return "unknown (the scheduler did not say)"
    rules = []
    if section.get("retention_days"):
        rules.append(f"recordings older than {section['retention_days']:g} days deleted")
    if section.get("keep_free_mb"):
        rules.append(f"{section['keep_free_mb']} MB kept free (the least valuable deleted first)")
    if not rules:
        return "off (nothing is deleted by it)"
    if section.get("keep_best_per_species"):
        rules.append(f"the best {section['keep_best_per_species']} of each species kept")
    text = "on: " + ", ".join(rules)
    if status is not None and status.HasField("retention"):
        done = status.retention
        text += (
            f"; {done.deleted_for_space} deleted for space and {done.deleted_for_age} for age "
            f"in the last {done.window_s / 3600:g} h"
        )
        if done.short_of_free_mb > 0:
            text += (
                f", {done.short_of_free_mb:.0f} MB short of the floor with nothing left to delete"
            )
    return text


@dataclass
class DetectionQuery:
    """The detections page's filters, as the user typed them; ``parse`` checks each by name."""

    species: str = ""
    started_from: dt.datetime | None = None
    started_to: dt.datetime | None = None
    min_score: float | None = None
    deployment_id: str = ""
    page: str = ""
    form: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, args: dict[str, str]) -> DetectionQuery:
        query = cls(
            form={k: args.get(k, "") for k in ("species", "from", "to", "min_score", "deployment")}
        )
        query.species = args.get("species", "").strip()
        query.started_from = _time_field(args.get("from", ""), "from")
        query.started_to = _time_field(args.get("to", ""), "to")
        score = args.get("min_score", "").strip()
        if score:
            try:
                query.min_score = float(score)
            except ValueError:
                raise InvalidArgumentError(f"min_score: {quote(score)} is not a number") from None
            if not 0.0 <= query.min_score <= 1.0:
                raise InvalidArgumentError(f"min_score: {score} is outside 0..1")
        deployment = args.get("deployment", "").strip()
        if deployment:
            try:
                query.deployment_id = str(uuid.UUID(deployment))
            except ValueError:
                raise InvalidArgumentError(
                    f"deployment: {quote(deployment)} is not a deployment id"
                ) from None
        if query.started_from and query.started_to and query.started_from >= query.started_to:
            raise InvalidArgumentError("from: must be before to")
        query.page = args.get("page", "")
        return query

    def filters(self) -> dict[str, Any]:
        found: dict[str, Any] = {"order": spb.SORT_ORDER_NEWEST_FIRST}
        if self.species:
            found.update(tag_key=SPECIES_TAG_KEY, tag_value=self.species)
        if self.started_from:
            found["started_from"] = self.started_from
        if self.started_to:
            found["started_to"] = self.started_to
        if self.min_score is not None:
            found["min_score"] = self.min_score
        if self.deployment_id:
            found["deployment_id"] = self.deployment_id
        return found


def _time_field(text: str, name: str) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            f"{name}: {quote(text)} is not a time (write 2026-06-01T21:30, in UTC)"
        ) from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def detection_row(hit: spb.DetectionHit) -> dict[str, Any]:
    d = hit.detection
    label, confidence = best_tag(d.tags)
    box = d.box if d.HasField("box") else None
    return {
        "recording_id": hit.recording_id,
        "detection_id": d.id,
        "model": hit.model_name,
        "recording_started_at": when(hit.recording_started_at),
        "start_s": box.start_time_s if box else None,
        "end_s": box.end_time_s if box else None,
        "low_khz": box.low_freq_hz / 1000 if box else None,
        "high_khz": box.high_freq_hz / 1000 if box else None,
        "score": d.detection_score,
        "species": label,
        "confidence": confidence,
    }


def detections(store: StoreClient, query: DetectionQuery) -> tuple[list[dict[str, Any]], str]:
    hits, token = store.list_detections_page(
        **query.filters(), limit=PAGE_SIZE, page_token=query.page
    )
    return [detection_row(hit) for hit in hits], token


CSV_COLUMNS = (
    "recording_started_at", "recording_id", "detection_id", "model", "species", "confidence",
    "score", "start_s", "end_s", "low_khz", "high_khz",
)  # fmt: skip


def detections_csv(store: StoreClient, query: DetectionQuery) -> Iterator[bytes]:
    """Every detection the filters select, page after page, as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    token = ""
    while True:
        hits, token = store.list_detections_page(
            **query.filters(), limit=CSV_PAGE_SIZE, page_token=token
        )
        for hit in hits:
            row = detection_row(hit)
            row["recording_started_at"] = row["recording_started_at"].isoformat()
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if not token:
            return


def recording_id_of(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise NotFoundError(f"no recording has the id {quote(text)}") from None


@dataclass
class RecordingView:
    recording: pb.Recording
    outputs: list[pb.ModelOutput]
    detections: list[dict[str, Any]]
    layout: spectrogram.Layout | None
    guano: dict[str, str]
    file_problem: str  # why there is no audio to show ("" when there is)

    @property
    def started_at(self) -> dt.datetime | None:
        return when(self.recording.started_at)

    @property
    def status_name(self) -> str:
        return (
            pb.RecordingStatus.Name(self.recording.status).removeprefix("RECORDING_STATUS_").lower()
        )


def recording_file(recordings_root: Path, recording: pb.Recording) -> Path:
    """The recording's file, checked to be inside the recordings volume."""
    return audio.inside(recordings_root, recording.path)


def _detections_of(outputs: list[pb.ModelOutput]) -> list[dict[str, Any]]:
    rows = []
    for output in outputs:
        for d in output.detections:
            label, confidence = best_tag(d.tags)
            box = d.box if d.HasField("box") else None
            rows.append(
                {
                    "id": d.id,
                    "model": output.model_name,
                    "label": label or "call",
                    "confidence": confidence,
                    "score": d.detection_score,
                    "box": box,
                }
            )
    rows.sort(key=lambda r: r["box"].start_time_s if r["box"] else -1.0)
    _choose_labels(rows)
    return rows


def _choose_labels(
    rows: list[dict[str, Any]], min_gap: float = 0.14, min_height_hz: float = 15_000
) -> None:
    """Label the most confident boxes whose labels would not overlap (a label spans about
    ``min_gap`` of the recording's width and ``min_height_hz`` of height); every box keeps its
    label as a tooltip."""
    boxed = [r for r in rows if r["box"]]
    end = max((r["box"].end_time_s for r in boxed), default=0.0) or 1.0
    placed: list[tuple[float, float]] = []
    for row in sorted(boxed, key=lambda r: -r["score"]):
        x, y = row["box"].start_time_s / end, row["box"].high_freq_hz
        row["show_label"] = all(abs(x - px) >= min_gap or abs(y - py) > 12_000 for px, py in placed)
        if row["show_label"]:
            placed.append((x, y))


def recording_view(store: StoreClient, recordings_root: Path, text_id: str) -> RecordingView:
    entry = store.get_recording(recording_id_of(text_id), include_model_outputs=True)
    recording = entry.recording
    outputs = list(entry.model_outputs)
    layout, guano, problem = None, {}, ""
    if recording.status == pb.RECORDING_STATUS_DELETED:
        problem = "the file was deleted (by file management or retention); the metadata stays"
    else:
        try:
            wav = audio.read_layout(recording_file(recordings_root, recording))
            capture_rate = recording.capture_samplerate_hz or wav.header_rate_hz
            layout = spectrogram.layout_for(wav.frames, capture_rate)
            guano = wav.guano
        except (NotFoundError, InvalidArgumentError) as exc:
            problem = str(exc)
        except audio.PermissionDeniedError as exc:
            problem = str(exc)
    return RecordingView(recording, outputs, _detections_of(outputs), layout, guano, problem)


def boxes_of(outputs: list[pb.ModelOutput]) -> list[spectrogram.Box]:
    return [
        spectrogram.Box(d.box.start_time_s, d.box.end_time_s, d.box.low_freq_hz, d.box.high_freq_hz)
        for output in outputs
        for d in output.detections
        if d.HasField("box")
    ]


def ticks(maximum: float, wanted: int = 8) -> list[float]:
    """Round values from 0 to ``maximum`` for an axis, about ``wanted`` of them."""
    if maximum <= 0:
        return [0.0]
    raw = maximum / wanted
    step = next(s * 10.0**e for e in range(-4, 8) for s in (1, 2, 5) if s * 10.0**e >= raw)
    count = int(maximum / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def _is_secret(field_node: dict[str, Any]) -> bool:
    """A field whose value is a secret (pydantic's SecretStr: format password, write-only): never
    shown, only replaced when the user types a new one. The built-in programs hold none (a
    password lives in a secret the configuration only names), but a third-party program may."""
    return field_node.get("format") == "password" or bool(field_node.get("writeOnly"))


@dataclass
class SettingField:
    dotted: str
    text: str  # the value as the form shows it
    help: str
    kind: str  # "string", "boolean", "number", "integer", "json"
    secret: bool = False
    choices: tuple[str, ...] = ()


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return schema.get("$defs", {}).get(ref.rsplit("/", 1)[1], {})
    return node


def _kind(node: dict[str, Any]) -> str:
    types = {node.get("type")} | {part.get("type") for part in node.get("anyOf", [])}
    types.discard(None)
    types.discard("null")
    if types == {"string"}:
        return "string"
    if types == {"boolean"}:
        return "boolean"
    if types <= {"number", "integer"} and types:
        return "number"
    return "json"


def value_text(value: Any, kind: str) -> str:
    if kind == "string" and isinstance(value, str):
        return value
    return json.dumps(value)


def setting_sections(
    config: dict[str, Any], schema: dict[str, Any]
) -> list[tuple[str, str, list[SettingField]]]:
    """(section, its help, its fields) for every section of the configuration, in its order."""
    sections = []
    for section, values in config.items():
        node = _resolve(schema, schema.get("properties", {}).get(section, {}))
        properties = node.get("properties", {})
        fields = []
        for name, value in values.items():
            field_node = _resolve(schema, properties.get(name, {}))
            kind = _kind(field_node)
            secret = _is_secret(field_node)
            fields.append(
                SettingField(
                    dotted=f"{section}.{name}",
                    text="" if secret else value_text(value, kind),
                    help=field_node.get("description", ""),
                    kind=kind,
                    secret=secret,
                    choices=tuple(map(str, field_node.get("enum", ()))),
                )
            )
        sections.append((section, node.get("description", ""), fields))
    return sections


def changed_settings(
    current: list[tuple[str, str, list[SettingField]]], form: dict[str, str]
) -> list[tuple[str, str]]:
    """What the form changes, as SetConfig values: only fields whose text differs (a secret
    only when something was typed), strings sent as JSON so "20" stays text."""
    changes = []
    for _, _, fields in current:
        for setting in fields:
            if setting.dotted not in form:
                continue
            typed = form[setting.dotted]
            if setting.secret:
                if typed:
                    changes.append((setting.dotted, json.dumps(typed)))
                continue
            if setting.kind == "string":
                if typed != setting.text:
                    changes.append((setting.dotted, json.dumps(typed)))
            elif typed.strip() != setting.text:
                changes.append((setting.dotted, typed.strip()))
    return changes


@dataclass
class Heatmap:
    """Counts of each row (a species) in each column (an hour, a date), for an SVG grid."""

    title: str
    columns: list[str]
    rows: list[str]
    counts: list[list[int]]  # rows × columns
    column_starts: list[dt.datetime]

    @cached_property
    def largest(self) -> int:
        # Cached: every cell's fill is scaled by it (computed per cell it made the weeks' grid,
        # ~1,000 cells, quadratic: most of the activity page's time).
        return max((max(r) for r in self.counts if r), default=0)

    @property
    def cell_width(self) -> int:
        return 34 if len(self.columns) <= 25 else 18

    LABEL_WIDTH: ClassVar[int] = 190

    @property
    def width(self) -> int:
        return self.LABEL_WIDTH + self.cell_width * len(self.columns) + 10

    @property
    def height(self) -> int:
        return 30 + 22 * (len(self.rows) or 1) + 10

    def svg_rows(self) -> list[tuple[str, int, list[tuple[int, str, int, str, bool]]]]:
        """Each row's (species, y, cells); a cell is (x, fill, count, column label, dark text):
        worked out here once, so the template only writes them."""
        width, largest = self.cell_width, self.largest
        out = []
        for index, (row, counts) in enumerate(zip(self.rows, self.counts, strict=True)):
            cells = [
                (self.LABEL_WIDTH + width * c, self.fill(n), n, self.columns[c], n * 3 > largest)
                for c, n in enumerate(counts)
            ]
            out.append((row, 26 + 22 * index, cells))
        return out

    def fill(self, count: int) -> str:
        """White for none, then light to dark blue with the square root of the count."""
        if count <= 0:
            return "#f3f4f7"
        share = (count / self.largest) ** 0.5 if self.largest else 0.0
        low, high = (214, 228, 255), (16, 42, 120)
        r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(low, high, strict=True))
        return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(
    title: str, counts: list[Any], starts: list[dt.datetime], labels: list[str], zone: Any
) -> Heatmap:
    index = {start: i for i, start in enumerate(starts)}
    totals: dict[str, int] = {}
    cells: dict[tuple[str, int], int] = {}
    for count in counts:
        start = count.bucket_start.ToDatetime(tzinfo=dt.UTC).astimezone(zone)
        column = index.get(start)
        if column is None:
            continue
        cells[(count.tag_value, column)] = (
            cells.get((count.tag_value, column), 0) + count.detections
        )
        totals[count.tag_value] = totals.get(count.tag_value, 0) + count.detections
    rows = sorted(totals, key=lambda v: (-totals[v], v))
    matrix = [[cells.get((row, c), 0) for c in range(len(starts))] for row in rows]
    return Heatmap(title, labels, rows, matrix, starts)


def default_night(now: dt.datetime) -> dt.date:
    """The night to show first: the one under way or just ended (a night starts at noon)."""
    return (now - dt.timedelta(hours=12)).date()


def activity(
    store: StoreClient, zone_name: str, night: dt.date, weeks: int
) -> tuple[Heatmap, Heatmap]:
    zone = zoneinfo.ZoneInfo(zone_name)
    noon = dt.datetime.combine(night, dt.time(12), tzinfo=zone)
    # Hours of the night from noon to noon, in local time (a DST change gives 23 or 25).
    hours = []
    at = noon.astimezone(dt.UTC)
    end = (noon + dt.timedelta(days=1)).astimezone(dt.UTC)
    while at < end:
        hours.append(at.astimezone(zone))
        at += dt.timedelta(hours=1)
    last = night + dt.timedelta(days=1)
    first = last - dt.timedelta(days=7 * weeks - 1)
    days = [
        dt.datetime.combine(first + dt.timedelta(days=i), dt.time(0), tzinfo=zone)
        for i in range((last - first).days + 1)
    ]
    # The two sums are independent: storage runs them side by side on two pool connections,
    # so the page waits for the longer, not for both (the weeks' is most of it).
    with ThreadPoolExecutor(max_workers=1) as side:
        by_day_call = side.submit(
            store.count_detections,
            days[0],
            days[-1] + dt.timedelta(days=1),
            by_day=True,
            time_zone=zone_name,
        )
        by_hour = store.count_detections(hours[0], end, time_zone=zone_name)
        by_day = by_day_call.result()
    night_map = _heatmap(
        f"The night of {night.isoformat()}, detections per hour ({zone_name})",
        by_hour, hours, [f"{h.hour:02d}" for h in hours], zone,
    )  # fmt: skip
    weeks_map = _heatmap(
        f"Detections per day, {weeks} weeks to {last.isoformat()} ({zone_name})",
        by_day, days, [d.strftime("%d %b") for d in days], zone,
    )  # fmt: skip
    return night_map, weeks_map


@dataclass
class Folder:
    name: str
    files: int
    bytes: int


class DiskUsage:
    """Bytes and files under each top-level folder of the recordings volume, walked at most once a
    minute (a year of recordings is tens of thousands of files)."""

    def __init__(self, root: Path, max_age_s: float = 60.0) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self._cached: tuple[float, list[Folder]] | None = None

    def folders(self) -> list[Folder]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.max_age_s:
            self._cached = (now, self._walk())
        return self._cached[1]

    def _walk(self) -> list[Folder]:
        found: dict[str, Folder] = {}
        try:
            top = list(os.scandir(self.root))
        except OSError:
            return []
        for entry in top:
            name = entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "")
            folder = found.setdefault(name, Folder(name, 0, 0))
            stack = [entry]
            while stack:  # symbolic links are not followed: nothing outside the volume counts
                item = stack.pop()
                try:
                    if item.is_dir(follow_symlinks=False):
                        stack.extend(os.scandir(item.path))
                    elif item.is_file(follow_symlinks=False):
                        folder.files += 1
                        folder.bytes += item.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        return sorted(found.values(), key=lambda f: f.name)


def _outbox_row(entry: Any) -> dict[str, Any]:
    m, last = entry.message, entry.last_response
    if m.HasField("dead_at"):
        state = "dead letter"
    elif m.HasField("next_attempt_at") and m.next_attempt_at.ToDatetime(dt.UTC) > dt.datetime.now(
        dt.UTC
    ):
        state = "backing off"
    else:
        state = "due"
    return {
        "id": m.id,
        "state": state,
        "created_at": when(m.created_at),
        "attempts": m.attempts,
        "last_attempt_at": when(m.last_attempt_at),
        "next_attempt_at": when(m.next_attempt_at) if state == "backing off" else None,
        "dead_at": when(m.dead_at) if state == "dead letter" else None,
        "last_response": (
            f"{pb.ResponseStatus.Name(last.status).removeprefix('RESPONSE_STATUS_').lower()}: "
            f"{last.content[:200]}"
            if last.message_id
            else ""
        ),
        "content": m.content[:200],
    }


def messages_and_files(
    store: StoreClient, control: ControlClient, disk: DiskUsage, outbox_shown: int = 20
) -> dict[str, Any]:
    counts = store.count_messages()
    unsent = store.list_messages(limit=outbox_shown)  # due, backing off and dead: oldest first
    dead = store.list_messages(schema.MessageState.DEAD, limit=outbox_shown, newest_first=True)
    responses = store.list_responses(limit=20)
    try:
        file_management = control.config_field("file_management")
        plan, plan_problem = store.retention_plan(file_management, limit=10), ""
    except AcoustackError as exc:
        plan, plan_problem = None, f"retention unknown: {exc}"
    try:
        usage = shutil.disk_usage(disk.root)
    except OSError:
        usage = None
    return {
        "unsent_count": counts.due + counts.backing_off + counts.dead,
        "counts": {
            "due": counts.due,
            "backing off": counts.backing_off,
            "dead letters": counts.dead,
            "sent": counts.sent,
        },
        "next_attempt_at": when(counts.next_attempt_at) if counts.backing_off else None,
        "unsent": [_outbox_row(entry) for entry in unsent],
        "dead": [_outbox_row(entry) for entry in dead],
        "responses": [
            {
                "message_id": r.message_id,
                "received_at": when(r.received_at),
                "status": pb.ResponseStatus.Name(r.status).removeprefix("RESPONSE_STATUS_").lower(),
                "content": r.content[:200],
            }
            for r in responses
        ],
        "folders": disk.folders(),
        "usage": usage,
        "plan": plan,
        "plan_problem": plan_problem,
        "planned": [
            {
                "recording": p.recording,
                "reason": p.reason,
                "due_at": when(p.due_at),
                "started_at": when(p.recording.started_at),
            }
            for p in (plan.next if plan else [])
        ],
    }
