"""The HTTP transport: a threaded server from the standard library, requests parsed into plain
objects, routes matched by method and pattern, responses written with their length (or streamed
for server-sent events). No page logic lives here."""

from __future__ import annotations

import http.cookies
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("acoustack_dashboard")

MAX_FORM_BYTES = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    cookies: dict[str, str]
    client: str
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from the route's pattern

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    @property
    def secure(self) -> bool:
        """Whether a Secure cookie reaches the browser back: over HTTPS (a proxy in front says so
        in X-Forwarded-Proto), or on the loopback, which browsers count as a secure origin."""
        if self.headers.get("x-forwarded-proto", "").lower() == "https":
            return True
        host = urlsplit("//" + self.headers.get("host", "")).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = None  # of an iterable body; None: streamed until it ends

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, b"", headers=[("Location", location)])


def cookie(
    name: str, value: str, *, secure: bool, max_age_s: int | None = None, path: str = "/"
) -> str:
    morsel = http.cookies.SimpleCookie()
    morsel[name] = value
    item = morsel[name]
    item["path"] = path
    item["httponly"] = True
    item["samesite"] = "Strict"
    if secure:
        item["secure"] = True
    if max_age_s is not None:
        item["max-age"] = max_age_s
    return item.OutputString()


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self, not_found: Handler, failed: Callable[[Request, Exception], Response]):
        self.routes: list[Route] = []
        self.not_found = not_found
        self.failed = failed

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append(Route(method, re.compile(f"^{pattern}$"), handler))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method and not (
                route.method == "GET" and request.method == "HEAD"
            ):
                allowed = True
                continue
            request.params = match.groupdict()
            try:
                return route.handler(request)
            except Exception as exc:
                return self.failed(request, exc)
        if allowed:
            return Response(405, b"method not allowed", "text/plain; charset=utf-8")
        return self.not_found(request)


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
)


def _handler_class(router: Router) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "acoustack-dashboard"
        sys_version = ""

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FORM_BYTES:
                self.send_error(413, "request body too large")
                return
            jar = http.cookies.SimpleCookie()
            try:
                jar.load(self.headers.get("Cookie", ""))
            except http.cookies.CookieError:
                jar = http.cookies.SimpleCookie()
            request = Request(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                cookies={k: m.value for k, m in jar.items()},
                client=self.client_address[0],
                body=self.rfile.read(length) if length else b"",
            )
            response = router.dispatch(request)
            self._write(response)

        def _write(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            for name, value in (*SECURITY_HEADERS, *response.headers):
                self.send_header(name, value)
            body = response.body
            if isinstance(body, bytes):
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            if response.length is not None:
                self.send_header("Content-Length", str(response.length))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                _close(body)
                return
            try:
                for piece in body:
                    self.wfile.write(piece)
                    if response.length is None:
                        self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                _close(body)

        do_GET = do_POST = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def _close(body: Iterable[bytes]) -> None:
    if isinstance(body, Iterator) and hasattr(body, "close"):
        body.close()


class WebServer:
    def __init__(self, router: Router, host: str, port: int) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler_class(router))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
