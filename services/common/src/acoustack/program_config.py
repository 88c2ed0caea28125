"""The sections of a program's configuration, shared by the scheduler (which validates and keeps it)
and the services (which receive it with each task and with each self-check, so a `config set` takes
effect at the next run without a restart).

Unknown fields and wrong types are refused, and the error names the field's dotted path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from acoustack import limits
from acoustack.errors import InvalidArgumentError, validation_message

_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_SUN = re.compile(r"^(dawn|sunrise|sunset|dusk)([-+]\d+[mh])?([-+]\d+[mh])?$")


def parse_windows(text: str) -> list[tuple[dt.time, dt.time]]:
    """'20:00-06:00,04:30-05:30' → [(20:00, 06:00), (04:30, 05:30)]."""
    windows = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(f"{part!r} is not HH:MM-HH:MM (e.g. 20:00-06:00)")
        h1, m1, h2, m2 = map(int, match.groups())
        try:
            windows.append((dt.time(h1, m1), dt.time(h2, m2)))
        except ValueError:
            raise ValueError(f"{part!r}: hours 0-23, minutes 0-59") from None
    return windows


def _minutes(token: str | None) -> dt.timedelta:
    if not token:
        return dt.timedelta(0)
    amount = int(token[1:-1]) * (60 if token[-1] == "h" else 1)
    return dt.timedelta(minutes=amount)


def parse_sun_window(text: str) -> tuple[str, dt.timedelta, dt.timedelta] | None:
    """'dusk-30m+3h' → ('dusk', 30 min before, 3 h after)."""
    if not text:
        return None
    match = _SUN.match(text.replace(" ", ""))
    if not match:
        raise ValueError(
            f"{text!r} is not EVENT-BEFORE+AFTER, e.g. dusk-30m+3h (events: dawn, sunrise, sunset, dusk)"
        )
    event, first, second = match.groups()
    before = _minutes(next((t for t in (first, second) if t and t[0] == "-"), None))
    after = _minutes(next((t for t in (first, second) if t and t[0] == "+"), None))
    if before + after <= dt.timedelta(0):
        raise ValueError(f"{text!r}: give a duration before and/or after the event")
    return event, before, after


def parse_duty_cycle(text: str) -> tuple[int, int] | None:
    """'5/30' → (5, 30): the first 5 minutes of every 30."""
    if not text:
        return None
    minutes, sep, period = text.replace(" ", "").partition("/")
    if not sep or not minutes.isdigit() or not period.isdigit():
        raise ValueError(f"{text!r} is not N/M in minutes, e.g. 5/30 (5 minutes every 30)")
    first, every = int(minutes), int(period)
    if not 0 < first < every <= 1440:
        raise ValueError(
            f"{text!r}: need 0 < N < M <= 1440 (N equal to M would keep everything: use save_all)"
        )
    return first, every


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RecordingConfig(Section):
    duration_s: Annotated[
        float, Field(gt=0, le=3600, description="length of each recording, seconds")
    ] = 3.0
    interval_s: Annotated[
        float, Field(gt=0, le=86400, description="a recording starts every this many seconds")
    ] = 10.0
    offset_s: Annotated[
        float, Field(ge=0, description="slots start this many seconds after the interval boundary")
    ] = 0.0
    samplerate_hz: Annotated[
        int, Field(gt=0, le=1_000_000, description="capture rate, Hz (384000 for bats)")
    ] = 384_000
    channels: Annotated[int, Field(ge=1, le=8, description="input channels")] = 1
    time_expansion: Annotated[float, Field(gt=0, le=100, description="1 for real time")] = 1.0
    daily_windows: Annotated[
        str, Field(description="local windows to record in, e.g. 20:00-06:00; empty: all day")
    ] = ""
    timezone: Annotated[str, Field(description="IANA time zone of the daily windows")] = "UTC"
    sun_window: Annotated[
        str, Field(description="record around a sun event at the deployment, e.g. dusk-30m+3h")
    ] = ""
    min_free_disk_mb: Annotated[
        int, Field(ge=0, description="stop recording below this much free disk")
    ] = 500

    @field_validator("daily_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    @field_validator("sun_window")
    @classmethod
    def _sun(cls, value: str) -> str:
        parse_sun_window(value)
        return value


class FileManagementConfig(Section):
    # 30 s, not acoupi's 2 minutes: new recordings wait in the RAM-backed temporary area until
    # filed, so this bounds what a power cut loses and what the area holds (3 s at 384 kHz every
    # 10 s: at most 3-4 recordings of 2.2 MiB instead of 12). A run with nothing due costs ~1 ms.
    interval_s: Annotated[
        float, Field(gt=0, description="how often temporary recordings are saved or deleted")
    ] = 30.0
    save_all: Annotated[
        bool,
        Field(
            description="keep every recording; false: keep only those a saving filter accepts "
            "(saving_threshold, save_daily_windows, save_sun_window, save_duty_cycle, "
            "save_tags: any one is enough) and delete the rest"
        ),
    ] = True
    destination: Annotated[
        str, Field(description="where saved recordings go, in date folders Y/M/D")
    ] = "/recordings"
    saving_threshold: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="saving filter: keep a recording with a detection at least this "
            "confident; null: no such filter",
        ),
    ] = 0.5
    save_daily_windows: Annotated[
        str,
        Field(
            description="saving filter: keep recordings started in these local windows, "
            "e.g. 21:00-23:00 (in save_timezone); empty: no such filter"
        ),
    ] = ""
    save_timezone: Annotated[
        str, Field(description="IANA time zone of save_daily_windows and save_duty_cycle")
    ] = "UTC"
    save_sun_window: Annotated[
        str,
        Field(
            description="saving filter: keep recordings started around a sun event at the "
            "deployment, e.g. dusk-30m+1h; empty: no such filter"
        ),
    ] = ""
    save_duty_cycle: Annotated[
        str,
        Field(
            description="saving filter: N/M keeps recordings started in the first N minutes of "
            "every M (counted from local midnight in save_timezone), e.g. 5/30; empty: no such "
            "filter"
        ),
    ] = ""
    save_tags: Annotated[
        list[str],
        Field(
            description="saving filter: keep recordings with a detection tagged with any of "
            "these key=value pairs, e.g. species=Myotis daubentonii; empty: no such filter"
        ),
    ] = []
    save_tags_threshold: Annotated[
        float,
        Field(ge=0, le=1, description="the least confidence a save_tags tag needs"),
    ] = 0.0
    saving_managers: Annotated[
        list[Literal["confidence_folders", "date_folders", "id"]],
        Field(
            min_length=1,
            description="where a kept recording goes, tried in order (the first that takes it "
            "wins; none: deleted): confidence_folders (confident/ or unconfident/ by its best "
            "detection), date_folders (Y/M/D), id (named by its id)",
        ),
    ] = ["date_folders"]
    confident_threshold: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="confidence_folders: a best detection at least this confident goes to "
            "confident/",
        ),
    ] = 0.5
    unconfident_threshold: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="confidence_folders: one at least this confident (and below "
            "confident_threshold) goes to unconfident/; below it the next manager decides",
        ),
    ] = 0.2
    file_name_time_format: Annotated[
        str,
        Field(
            min_length=1,
            description="strftime format of the start time (UTC) that begins a saved file's "
            "name; the source and the recording's short id follow, so names never collide",
        ),
    ] = "%Y%m%d_%H%M%S"
    retention_days: Annotated[
        float,
        Field(
            ge=0,
            description="delete saved recordings that started more than this many days ago; "
            "0 keeps them for ever",
        ),
    ] = 0.0
    keep_free_mb: Annotated[
        int,
        Field(
            ge=0,
            description="while the destination's disk has less free space than this, delete "
            "saved recordings, the least valuable first (no detection, then the lowest best "
            "detection score, the oldest first among equals); must be above "
            "recording.min_free_disk_mb so that recording never stops; 0 never deletes for "
            "space (recording then stops at recording.min_free_disk_mb)",
        ),
    ] = 1024
    keep_best_per_species: Annotated[
        int,
        Field(
            ge=0,
            le=10_000,
            description="retention never deletes the recordings holding the N most confident "
            "detections of each species",
        ),
    ] = 5

    @field_validator("save_daily_windows")
    @classmethod
    def _save_windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    @field_validator("save_sun_window")
    @classmethod
    def _save_sun(cls, value: str) -> str:
        parse_sun_window(value)
        return value

    @field_validator("save_timezone")
    @classmethod
    def _save_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a known time zone (use an IANA name like Europe/London)"
            ) from None
        return value

    @field_validator("save_duty_cycle")
    @classmethod
    def _duty(cls, value: str) -> str:
        parse_duty_cycle(value)
        return value

    @field_validator("save_tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for pair in value:
            key, sep, _ = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{pair!r} is not key=value (e.g. species=Myotis daubentonii)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> FileManagementConfig:
        if self.unconfident_threshold > self.confident_threshold:
            raise ValueError("unconfident_threshold: must not exceed confident_threshold")
        if not self.save_all and not self.saving_filters_set():
            raise ValueError(
                "save_all: false with no saving filter would delete every recording; set a "
                "filter (saving_threshold, save_daily_windows, save_sun_window, save_duty_cycle, "
                "save_tags) or set save_all to true"
            )
        return self

    def saving_filters_set(self) -> list[str]:
        """The names of the saving filters this section sets."""
        return [
            name
            for name, is_set in (
                ("saving_threshold", self.saving_threshold is not None),
                ("save_daily_windows", bool(self.save_daily_windows)),
                ("save_sun_window", bool(self.save_sun_window)),
                ("save_duty_cycle", bool(self.save_duty_cycle)),
                ("save_tags", bool(self.save_tags)),
            )
            if is_set
        ]


class MessagingConfig(Section):
    @model_validator(mode="before")
    @classmethod
    def _no_password_in_the_configuration(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mqtt_password" in data:
            raise ValueError(
                "mqtt_password is no longer a field: a password does not live in the program "
                "configuration (acoustack config get would print it). Put it in the secret "
                "messaging.mqtt_password_secret names (compose: MQTT_PASSWORD in "
                "compose/secrets.env; k3s: the acoustack-credentials Secret) and remove "
                "messaging.mqtt_password"
            )
        return data

    interval_s: Annotated[float, Field(gt=0, description="how often the outbox is sent")] = 120.0
    max_per_run: Annotated[
        int, Field(ge=1, le=10_000, description="most messages sent per run")
    ] = 100
    order: Annotated[
        Literal["oldest-first", "newest-first"], Field(description="which messages go first")
    ] = "oldest-first"
    retry_backoff_s: Annotated[
        float,
        Field(
            ge=1,
            le=86_400,
            description="a message whose try failed waits about this long before the next, "
            "doubling with each failed try (with jitter)",
        ),
    ] = 60.0
    retry_backoff_max_s: Annotated[
        float,
        Field(
            ge=1,
            le=604_800,
            description="the longest wait between two tries of a message (a receiver's "
            "Retry-After may ask for longer)",
        ),
    ] = 3600.0
    dead_after_refusals: Annotated[
        int,
        Field(
            ge=1,
            le=1000,
            description="a message refused for good (HTTP 4xx other than 408 and 429, an MQTT "
            "PUBACK refusal) this many times becomes a dead letter: kept, never tried again "
            "unless retried (acoustack messages retry)",
        ),
    ] = 3
    http_url: Annotated[
        str, Field(description="HTTP endpoint messages are POSTed to; empty: none")
    ] = ""
    http_content_type: Annotated[str, Field(description="Content-Type of each POST")] = (
        "application/json"
    )
    http_timeout_s: Annotated[
        float, Field(gt=0, le=300, description="seconds to wait for the HTTP server's answer")
    ] = 10.0
    mqtt_host: Annotated[str, Field(description="MQTT broker host; empty: none")] = ""
    mqtt_port: Annotated[int, Field(ge=1, le=65535, description="MQTT broker port")] = 1883
    mqtt_topic: Annotated[str, Field(description="MQTT topic messages are published to")] = (
        "acoustack/messages"
    )
    mqtt_username: Annotated[str, Field(description="MQTT user name; empty: anonymous")] = ""
    # Only the name of a secret: the configuration is printed (`acoustack config get`) and sent
    # with every task, so a password never lives in it.
    mqtt_password_secret: Annotated[
        str,
        Field(
            pattern=r"^([A-Za-z0-9_-][A-Za-z0-9_.-]{0,99})?$",
            description="the secret holding the MQTT password, used with mqtt_username: a file "
            "of this name in the messenger's secrets directory (MESSENGER_SECRETS_DIR, "
            "/run/secrets; compose and k3s put MQTT_PASSWORD there as mqtt_password); empty: "
            "no password",
        ),
    ] = "mqtt_password"
    mqtt_tls: Annotated[bool, Field(description="connect to the MQTT broker over TLS")] = False
    mqtt_transport: Annotated[
        Literal["tcp", "websockets"], Field(description="MQTT over plain TCP or WebSockets")
    ] = "tcp"
    mqtt_timeout_s: Annotated[
        float, Field(gt=0, le=300, description="seconds to wait for the broker to take a message")
    ] = 10.0
    mqtt_backlog_topic: Annotated[
        str,
        Field(
            pattern=r"^[^#+\x00]*$",
            description="where a message older than mqtt_backlog_age_s is published instead of "
            "mqtt_topic (a hub takes it after live traffic); empty: every message on mqtt_topic",
        ),
    ] = ""
    mqtt_backlog_age_s: Annotated[
        float,
        Field(gt=0, description="how old a message is when it goes to mqtt_backlog_topic"),
    ] = 300.0
    homeassistant_discovery: Annotated[
        bool,
        Field(
            description="announce the device and its sensors (last detection, detections today "
            "per species, diagnostics) to Home Assistant over MQTT discovery"
        ),
    ] = True
    homeassistant_prefix: Annotated[
        str,
        Field(
            pattern=r"^[^#+\s/][^#+\s]*$",
            description="Home Assistant's MQTT discovery prefix (its status topic is "
            "<prefix>/status)",
        ),
    ] = "homeassistant"


class SummaryConfig(Section):
    interval_s: Annotated[
        float, Field(gt=0, description="how often a summary of the detections is sent")
    ] = 3600.0
    tag_key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.NAME_CHARS,
            pattern=limits.LINE_PATTERN,
            description="the tag key summaries count detections by: species (the bundled "
            "model's), or a model server's own, e.g. class (docs/detector-model.md, tag "
            "conventions)",
        ),
    ] = "species"


class HeartbeatConfig(Section):
    interval_s: Annotated[float, Field(gt=0, description="how often a heartbeat is sent")] = 3600.0


MODEL_PATTERN = r"^(batdetect2|grpc://[^/\s]+:\d+)$"
BUNDLED_MODEL_NAME = "BatDetect2"  # the model_name of the bundled model's outputs


class ExtraModel(Section):
    """A model run beside `detection.model` on every recording, with rules of its own."""

    model: Annotated[
        str,
        Field(
            pattern=MODEL_PATTERN,
            description="batdetect2 (bundled), or grpc://host:port for a model server",
        ),
    ]
    name: Annotated[
        str,
        Field(
            max_length=limits.NAME_CHARS,
            pattern=limits.LINE_PATTERN,
            description="the model_name its outputs are stored, queried and messaged under "
            "(BatDetect2 for the bundled one; empty: the server's Info name); file management "
            "waits for it when the model is required",
        ),
    ] = ""
    send_audio: Annotated[
        bool, Field(description="stream the audio to the model server instead of naming the file")
    ] = False
    threshold: Annotated[
        float, Field(ge=0, le=1, description="its detections and tags below this are dropped")
    ] = 0.2
    message_threshold: Annotated[
        float | None,
        Field(ge=0, le=1, description="messages: only its detections this confident; empty: all"),
    ] = None
    required: Annotated[
        bool,
        Field(
            description="file management keeps a recording temporary until this model's output "
            "is stored, and its permanent failure fails the recording; false: its output is "
            "kept whenever it arrives"
        ),
    ] = True

    @model_validator(mode="after")
    def _named(self) -> ExtraModel:
        if self.model == "batdetect2":
            if self.name not in ("", BUNDLED_MODEL_NAME):
                raise ValueError(f"the bundled model's outputs are named {BUNDLED_MODEL_NAME}")
            if not self.name:
                self.name = BUNDLED_MODEL_NAME
        if self.required and not self.name:
            raise ValueError(
                f"{self.model} is required: give its name (the name its Info reports), so that "
                "file management can wait for its output"
            )
        return self


class DetectionConfig(Section):
    model: Annotated[
        str,
        Field(
            pattern=MODEL_PATTERN,
            description="batdetect2 (bundled), or grpc://host:port for a model server",
        ),
    ] = "batdetect2"
    model_send_audio: Annotated[
        bool,
        Field(
            description="stream each recording's audio to the model server (for one that cannot "
            "see the recordings volume); false: the request names the file"
        ),
    ] = False
    threshold: Annotated[
        float, Field(ge=0, le=1, description="detections and tags below this score are dropped")
    ] = 0.2
    message_threshold: Annotated[
        float | None,
        Field(
            ge=0,
            le=1,
            description="send only detections at least this confident; empty: the whole output",
        ),
    ] = None
    resend_after_s: Annotated[
        float,
        Field(
            ge=1,
            description="a temporary recording still without a model output after this long "
            "(counted while no detection task waits) has its detection asked for again",
        ),
    ] = 600.0
    resend_attempts: Annotated[
        int,
        Field(
            ge=0,
            le=100,
            description="detections asked for again for one recording before it is marked failed",
        ),
    ] = 3
    extra_models: Annotated[
        list[ExtraModel],
        Field(
            max_length=8,
            description="more models run on every recording beside `model`, in parallel, each "
            "with its own model, name, send_audio, threshold, message_threshold and required "
            '(default true); e.g. [{"model": "grpc://127.0.0.1:50061", "name": '
            '"energy-band"}]',
        ),
    ] = []

    @model_validator(mode="after")
    def _distinct_models(self) -> DetectionConfig:
        seen = {self.model}
        for i, extra in enumerate(self.extra_models):
            if extra.model in seen:
                raise ValueError(f"extra_models[{i}]: {extra.model} already runs")
            seen.add(extra.model)
        return self

    def required_model_names(self) -> set[str]:
        """The outputs a recording waits for besides `model`'s (whose name a server gives)."""
        return {m.name for m in self.extra_models if m.required}

    def extra_model_names(self) -> set[str]:
        return {m.name for m in self.extra_models if m.name}

    def is_processed(self, model_names: set[str]) -> bool:
        """Whether a recording with outputs of these models is processed: `model` has stored
        its output (any output not from an extra model: a model server names itself) and so has
        every required extra model. File management, the detection sweep and a deployment stop
        all wait for this."""
        return self.required_model_names() <= model_names and bool(
            model_names - self.extra_model_names()
        )


SectionT = TypeVar("SectionT", bound=Section)


def read_section(
    program_config: Mapping[str, Any] | None, name: str, schema: type[SectionT]
) -> SectionT | None:
    """The section ``name`` of a program's configuration, validated; None when the program has none.

    Raises InvalidArgumentError naming ``name.field`` when the section is malformed.
    """
    if not program_config or name not in program_config:
        return None
    try:
        return schema.model_validate(program_config[name])
    except ValidationError as exc:
        raise InvalidArgumentError(validation_message(exc, name)) from None
