"""The pages' HTTP faces: each handler checks who asks (login, CSRF), reads its arguments, calls
the page's function (``pages``) and renders a template. Errors become pages with the status they
deserve: an unknown id 404, a refused path 403, a bad value 400 naming the field, storage or the
scheduler away 503."""

from __future__ import annotations

import datetime as dt
import json
import logging
import mimetypes
import queue
import urllib.parse
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import jinja2

from acoustack.errors import (
    AcoustackError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from acoustack_dashboard import audio, fleet, pages, spectrogram
from acoustack_dashboard.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    Password,
    Session,
    Sessions,
    same_token,
)
from acoustack_dashboard.cache import ImageCache
from acoustack_dashboard.events import LiveFeed
from acoustack_dashboard.web import Request, Response, Router, cookie, redirect

log = logging.getLogger("acoustack_dashboard")

PACKAGE = Path(__file__).resolve().parent
STATIC = PACKAGE / "static"
TEMPLATES = PACKAGE / "templates"

_STATUS_OF: list[tuple[type[AcoustackError], int]] = [
    (NotFoundError, 404),
    (PermissionDeniedError, 403),
    (InvalidArgumentError, 400),
    (FailedPreconditionError, 409),
    (UnavailableError, 503),
]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "—"
    env.filters["duration"] = _duration
    env.filters["megabytes"] = lambda n: f"{n / 1e6:,.1f} MB"
    env.globals["ticks"] = pages.ticks
    return env


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"


def _safe_next(target: str) -> str:
    """Only a path on this site: never another host (//evil, /\\evil, https://…)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@dataclass
class Views:
    store: Any  # acoustack.clients.StoreClient
    control: pages.ControlClient
    password: Password
    recordings_root: Path
    cache: ImageCache
    public_pages: bool = False
    feed: LiveFeed | None = None
    sessions: Sessions | None = None
    throttle: LoginThrottle | None = None
    hub: fleet.HubClient | None = None  # hub mode: the fleet pages

    def __post_init__(self) -> None:
        self.env = templates()
        self.env.globals["fleet"] = self.hub is not None
        self.sessions = self.sessions or Sessions()
        self.throttle = self.throttle or LoginThrottle()
        self.disk = pages.DiskUsage(self.recordings_root)

    # --- plumbing ---------------------------------------------------------------------------

    def router(self) -> Router:
        router = Router(self.not_found, self.failed)
        read, write = self._read, self._write
        router.add("GET", "/healthz", lambda r: Response(200, b"ok\n", "text/plain"))
        router.add("GET", "/static/(?P<name>.+)", self.static)
        router.add("GET", "/login", self.login_page)
        router.add("POST", "/login", self.login)
        router.add("POST", "/logout", write(self.logout))
        router.add("GET", "/", read(self.overview))
        router.add("GET", "/overview/live", read(self.overview_live))
        router.add("GET", "/events", read(self.events))
        router.add("POST", "/deployment/start", write(self.start_deployment))
        router.add("POST", "/deployment/stop", write(self.stop_deployment))
        router.add("GET", "/detections", read(self.detections))
        router.add("GET", "/detections.csv", read(self.detections_csv))
        router.add("GET", "/activity", read(self.activity))
        router.add("GET", "/files", read(self.files))
        router.add("POST", "/messages/retry", write(self.retry_dead_letters))
        router.add("GET", "/settings", read(self.settings))
        router.add("POST", "/settings", write(self.save_settings))
        router.add("POST", "/settings/check", write(self.check))
        rec = "/recordings/(?P<id>[^/]+)"
        router.add("GET", rec, read(self.recording))
        router.add("GET", rec + "/spectrogram.png", read(self.spectrogram))
        router.add("GET", rec + "/audio.wav", read(self.audio))
        router.add("GET", rec + "/download", read(self.download))
        if self.hub is not None:
            router.add("GET", "/fleet", read(self.fleet))
            router.add("GET", "/fleet/devices/(?P<id>[^/]+)", read(self.fleet_device))
            router.add("GET", "/fleet/species", read(self.fleet_species))
        return router

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _read(self, handler):
        def guarded(request: Request) -> Response:
            if self.public_pages or self.session_of(request) is not None:
                return handler(request)
            return redirect("/login?next=" + url_quote(request.path, safe="/"))

        return guarded

    def _write(self, handler):
        def guarded(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                return self.page(request, "error.html", 403, title="Signed out",
                                 message="Sign in again: your session has ended.")  # fmt: skip
            if not same_token(session.csrf, request.form.get("csrf")):
                return self.page(request, "error.html", 403, title="Refused",
                                 message="The form was not sent by this dashboard's page (CSRF "
                                 "token missing or stale): reload the page and try again.")  # fmt: skip
            return handler(request)

        return guarded

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        session = self.session_of(request)
        body = self.env.get_template(template).render(
            signed_in=session is not None,
            csrf=session.csrf if session else "",
            path=request.path,
            **context,
        )
        return Response(status, body.encode("utf-8"), headers=[("Cache-Control", "no-store")])

    def not_found(self, request: Request) -> Response:
        return self.page(request, "error.html", 404, title="Not found",
                         message=f"Nothing is at {request.path}.")  # fmt: skip

    def failed(self, request: Request, exc: Exception) -> Response:
        for kind, status in _STATUS_OF:
            if isinstance(exc, kind):
                title = {404: "Not found", 403: "Refused", 400: "Bad request",
                         409: "Not now", 503: "Unavailable"}[status]  # fmt: skip
                return self.page(request, "error.html", status, title=title, message=str(exc))
        log.exception("%s %s failed", request.method, request.path)
        return self.page(request, "error.html", 500, title="Error",
                         message="The dashboard failed on this page; its log has the details.")  # fmt: skip

    # --- login ------------------------------------------------------------------------------

    def login_page(self, request: Request, status: int = 200, problem: str = "") -> Response:
        import secrets

        token = secrets.token_urlsafe(24)
        response = self.page(request, "login.html", status, problem=problem, login_token=token,
                             next=_safe_next(request.arg("next", "/")))  # fmt: skip
        return response.header(
            "Set-Cookie", cookie(LOGIN_COOKIE, token, secure=request.secure, max_age_s=3600)
        )

    def login(self, request: Request) -> Response:
        form = request.form
        client = request.client
        wait_s = self.throttle.wait_s(client)
        if wait_s > 0:
            response = self.login_page(
                request, 429,
                f"Too many wrong passwords from {client}: wait {wait_s:.0f} s before the next try.",
            )  # fmt: skip
            return response.header("Retry-After", str(max(1, round(wait_s))))
        if not same_token(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf")):
            return self.login_page(request, 403, "The login form expired: sign in again.")
        if not self.password.matches(form.get("password", "")):
            self.throttle.failed(client)
            log.warning("wrong dashboard password from %s", client)
            return self.login_page(request, 401, "Wrong password.")
        self.throttle.succeeded(client)
        token, _ = self.sessions.open()
        response = redirect(_safe_next(form.get("next", "/")))
        response.header(
            "Set-Cookie",
            cookie(SESSION_COOKIE, token, secure=request.secure,
                   max_age_s=int(self.sessions.lifetime_s)),
        )  # fmt: skip
        return response.header("Set-Cookie", cookie(LOGIN_COOKIE, "", secure=request.secure,
                                                    max_age_s=0))  # fmt: skip

    def logout(self, request: Request) -> Response:
        self.sessions.close(request.cookies.get(SESSION_COOKIE))
        return redirect("/login").header(
            "Set-Cookie", cookie(SESSION_COOKIE, "", secure=request.secure, max_age_s=0)
        )

    # --- pages ------------------------------------------------------------------------------

    def static(self, request: Request) -> Response:
        path = audio.inside(STATIC, request.params["name"])
        if not path.is_file():
            raise NotFoundError(f"no file {request.params['name']!r} among the static files")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(200, path.read_bytes(), kind, [("Cache-Control", "max-age=3600")])

    def overview(self, request: Request, status: int = 200, problem: str = "") -> Response:
        done = {"started": "Deployment started.", "stopped": "Deployment stopped."}.get(
            request.arg("done"), ""
        )
        return self.page(request, "overview.html", status, problem=problem, done=done,
                         live=self.feed is not None, **pages.overview(self.control))  # fmt: skip

    def overview_live(self, request: Request) -> Response:
        """The overview's changing parts alone, which the page swaps in at each event."""
        return self.page(request, "overview_live.html", problem="", done="", live=self.feed is not None,
                         **pages.overview(self.control))  # fmt: skip

    def events(self, request: Request) -> Response:
        """Server-sent events: each domain event as it arrives, a comment every 15 s to notice a
        page that went away, "resync" when the feed (re)connects."""
        if self.feed is None:
            body = b'retry: 60000\ndata: {"event": "unavailable"}\n\n'
            return Response(200, body, "text/event-stream", [("Cache-Control", "no-store")])
        feed = self.feed

        def stream():
            page = feed.subscribe()
            try:
                yield b"retry: 3000\n\n"
                while True:
                    try:
                        event = page.get(timeout=15)
                    except queue.Empty:
                        yield b": still here\n\n"
                        continue
                    yield b"data: " + json.dumps(event, default=str).encode() + b"\n\n"
            finally:
                feed.unsubscribe(page)

        return Response(200, stream(), "text/event-stream",
                        [("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")])  # fmt: skip

    def start_deployment(self, request: Request) -> Response:
        form = request.form
        try:
            name = form.get("name", "").strip()
            if not name:
                raise InvalidArgumentError("name: give the deployment a name (the site, say)")
            latitude = _optional_float(form.get("latitude", ""), "latitude")
            longitude = _optional_float(form.get("longitude", ""), "longitude")
            reply = self.control.start_deployment(
                name, latitude, longitude, skip_checks=form.get("skip_checks") == "on"
            )
        except (InvalidArgumentError, FailedPreconditionError) as exc:
            return self.overview(request, 400, problem=str(exc))
        log.info("deployment %s started from the dashboard", reply.deployment.name)
        return redirect("/?done=started")

    def stop_deployment(self, request: Request) -> Response:
        try:
            wait_s = _optional_float(request.form.get("flush_timeout_s", ""), "flush_timeout_s")
            reply = self.control.stop_deployment(wait_s or 0.0)
        except (InvalidArgumentError, FailedPreconditionError) as exc:
            return self.overview(request, 409, problem=str(exc))
        log.info("deployment %s stopped from the dashboard", reply.deployment.name)
        if reply.flush_left:
            return self.overview(request, 200, problem="Stopped, but not everything in flight "
                                 "finished in time: " + "; ".join(reply.flush_left))  # fmt: skip
        return redirect("/?done=stopped")

    def activity(self, request: Request) -> Response:
        zone = self._time_zone()
        night_text = request.arg("night")
        if night_text:
            try:
                night = dt.date.fromisoformat(night_text)
            except ValueError:
                raise InvalidArgumentError(
                    f"night: {night_text[:20]!r} is not a date (write 2026-06-01)"
                ) from None
        else:
            night = pages.default_night(
                dt.datetime.now(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
            )
        weeks_text = request.arg("weeks", "4")
        if not weeks_text.isdigit() or not 1 <= int(weeks_text) <= 52:
            raise InvalidArgumentError(f"weeks: {weeks_text[:20]!r} is not a number from 1 to 52")
        night_map, weeks_map = pages.activity(self.store, zone, night, int(weeks_text))
        return self.page(request, "activity.html", night_map=night_map, weeks_map=weeks_map,
                         night=night, weeks=int(weeks_text), zone=zone,
                         previous=night - dt.timedelta(days=1),
                         next=night + dt.timedelta(days=1))  # fmt: skip

    def files(self, request: Request) -> Response:
        retried = request.arg("retried", "")
        return self.page(request, "files.html",
                         retried=int(retried) if retried.isdigit() else None,
                         **pages.messages_and_files(self.store, self.control, self.disk))  # fmt: skip

    def retry_dead_letters(self, request: Request) -> Response:
        retried = self.control.retry_dead_letters()
        log.info("%d dead letter(s) retried from the dashboard", len(retried))
        return redirect(f"/files?retried={len(retried)}#dead")

    def _time_zone(self) -> str:
        """The program's recording.timezone (the deployment's), UTC when the scheduler is away."""
        try:
            value = self.control.config_field("recording.timezone")
        except AcoustackError:
            return "UTC"
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            return "UTC"
        return value

    def settings(self, request: Request, status: int = 200, problem: str = "",
                 refused: str = "", typed: dict[str, str] | None = None,
                 checks: list | None = None) -> Response:  # fmt: skip
        config, schema = self.control.config()
        saved = {"1": "Saved and applied."}.get(request.arg("saved"), "")
        return self.page(request, "settings.html", status,
                         sections=pages.setting_sections(config, schema), problem=problem,
                         refused=refused, typed=typed or {}, saved=saved,
                         checks=checks)  # fmt: skip

    def save_settings(self, request: Request) -> Response:
        form = request.form
        config, schema = self.control.config()
        changes = pages.changed_settings(pages.setting_sections(config, schema), form)
        if not changes:
            return redirect("/settings")
        try:
            self.control.set_config(changes)
        except InvalidArgumentError as exc:
            # The scheduler names the field first ("recording.duration_s: …"); nothing was applied.
            refused = str(exc).split(":", 1)[0]
            return self.settings(request, 400, problem=f"Nothing was changed. {exc}",
                                 refused=refused, typed=form)  # fmt: skip
        log.info("settings changed from the dashboard: %s", ", ".join(f for f, _ in changes))
        return redirect("/settings?saved=1")

    def check(self, request: Request) -> Response:
        return self.settings(request, checks=self.control.run_checks())

    def detections(self, request: Request) -> Response:
        args = {k: v[0] for k, v in request.query.items()}
        try:
            query = pages.DetectionQuery.parse(args)
            rows, next_page = pages.detections(self.store, query)
        except InvalidArgumentError as exc:
            return self.page(request, "detections.html", 400, problem=str(exc), rows=[],
                             next_page="", form=args, export="")  # fmt: skip
        export = "&".join(f"{k}={url_quote(v)}" for k, v in query.form.items() if v)
        return self.page(request, "detections.html", rows=rows, next_page=next_page,
                         problem="", form=query.form, export=export)  # fmt: skip

    def detections_csv(self, request: Request) -> Response:
        query = pages.DetectionQuery.parse({k: v[0] for k, v in request.query.items()})
        return Response(
            200, pages.detections_csv(self.store, query), "text/csv; charset=utf-8",
            [("Content-Disposition", 'attachment; filename="detections.csv"')],
        )  # fmt: skip

    def recording(self, request: Request) -> Response:
        view = pages.recording_view(self.store, self.recordings_root, request.params["id"])
        expansion = _expansion(request.arg("expansion", str(audio.DEFAULT_EXPANSION)))
        return self.page(request, "recording.html", view=view, expansion=expansion,
                         expansions=audio.EXPANSIONS)  # fmt: skip

    def _recording_file(self, request: Request):
        entry = self.store.get_recording(pages.recording_id_of(request.params["id"]),
                                         include_model_outputs=True)  # fmt: skip
        return entry, audio.read_layout(pages.recording_file(self.recordings_root, entry.recording))

    def spectrogram(self, request: Request) -> Response:
        entry, wav = self._recording_file(request)
        rate = entry.recording.capture_samplerate_hz or wav.header_rate_hz
        outputs = list(entry.model_outputs)
        stat = wav.path.stat()
        key = self.cache.key(entry.recording.id, wav.path, stat.st_mtime_ns, stat.st_size,
                             *(o.id for o in outputs))  # fmt: skip
        png = self.cache.get(
            key,
            lambda: spectrogram.render(audio.WavChannel(wav), rate, pages.boxes_of(outputs))[0],
        )
        return Response(200, png, "image/png", [("Cache-Control", "private, max-age=86400")])

    def audio(self, request: Request) -> Response:
        entry, wav = self._recording_file(request)
        expansion = _expansion(request.arg("expansion", "1"))
        rate = audio.playback_rate(entry.recording.capture_samplerate_hz or wav.header_rate_hz,
                                   expansion)  # fmt: skip
        return _ranged(request, audio.at_rate(wav, rate), [])

    def download(self, request: Request) -> Response:
        _entry, wav = self._recording_file(request)
        name = wav.path.name.replace('"', "")
        disposition = ("Content-Disposition", f'attachment; filename="{name}"')
        return _ranged(request, audio.whole_file(wav.path), [disposition])

    # --- the fleet (hub mode) ---------------------------------------------------------------

    def fleet(self, request: Request) -> Response:
        now = dt.datetime.now(dt.UTC)
        rows = fleet.devices(self.hub, now)
        return self.page(request, "fleet.html", devices=rows, map=fleet.fleet_map(rows))

    def fleet_device(self, request: Request) -> Response:
        device_id = urllib.parse.unquote(request.params["id"])
        now = dt.datetime.now(dt.UTC)
        return self.page(
            request, "fleet_device.html", device=fleet.device(self.hub, device_id, now)
        )

    def fleet_species(self, request: Request) -> Response:
        bucket = request.arg("bucket", "day")
        table = fleet.species_over_time(self.hub, bucket)
        return self.page(request, "fleet_species.html", table=table, bucket=bucket)


def _ranged(request: Request, source: audio.ByteSource, headers: list) -> Response:
    """The bytes a Range header asks for (206), else the whole (200): browsers seek in audio with
    ranges, and some play none without them."""
    headers = [*headers, ("Accept-Ranges", "bytes"), ("Cache-Control", "private, max-age=3600")]
    try:
        wanted = audio.byte_range(request.headers.get("range", ""), source.length)
    except InvalidArgumentError:
        return Response(416, b"", "audio/wav",
                        [*headers, ("Content-Range", f"bytes */{source.length}")])  # fmt: skip
    if wanted is None:
        return Response(200, source.chunks(), "audio/wav", headers, length=source.length)
    start, stop = wanted
    headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{source.length}"))
    return Response(206, source.chunks(start, stop), "audio/wav", headers, length=stop - start)


def _optional_float(text: str, field: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidArgumentError(f"{field}: {text!r} is not a number") from None


def _expansion(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value not in audio.EXPANSIONS:
        raise InvalidArgumentError(
            f"expansion: {text[:20]!r} is not one of {', '.join(map(str, audio.EXPANSIONS))}"
        )
    return value
