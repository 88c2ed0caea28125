"""Test helpers for the dashboard: an HTTP client that keeps cookies as a browser does (Secure
ones included, on the loopback) and signs in through the login form with its CSRF token."""

from __future__ import annotations

import http.client
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

# Made per run, like the test brokers' passwords: no password lives in a committed file.
PASSWORD = secrets.token_urlsafe(18)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Client:
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        reply = Reply(response.status, response.headers, response.read())
        connection.close()
        for line in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str]) -> Reply:
        return self.request("POST", path, form)

    def login(self, password: str = PASSWORD) -> Reply:
        page = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return self.post("/login", {"csrf": token, "password": password, "next": "/"})

    def csrf(self, path: str = "/detections") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.get(path).text).group(1)
