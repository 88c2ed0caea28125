"""The fleet pages' data (hub mode): the hub's JSON API read, and what each page shows.

The dashboard opens no database of the hub's either: it asks the hub over HTTP
(services/hub: /devices, /devices/<id>, /detections, /species, /alarms).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from acoustack.errors import InvalidArgumentError, NotFoundError, UnavailableError

TIMEOUT_S = 10.0


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class HubClient:
    url: str  # http://hub:8090

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        target = f"{self.url.rstrip('/')}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(target, timeout=TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            if exc.code == 404:
                raise NotFoundError(f"the hub has no {path}: {detail}") from None
            if exc.code == 400:
                raise InvalidArgumentError(str(detail)) from None
            raise UnavailableError(f"the hub at {self.url} answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise UnavailableError(
                f"the hub at {self.url} is not answering ({exc}); check DASHBOARD_HUB_URL"
            ) from None


def _device_row(device: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    last_seen = _time(device["last_seen"])
    alarms = device.get("open_alarms") or []
    status = device.get("status") or "—"
    state = "alarm" if alarms else ("degraded" if status.startswith("degraded") else "ok")
    return {
        "device_id": device["device_id"],
        "status": status,
        "state": state,
        "alarms": alarms,
        "last_seen": last_seen,
        "last_seen_ago_s": (now - last_seen).total_seconds() if last_seen else None,
        "last_detection_at": _time(device.get("last_detection_at")),
        "software_version": device.get("software_version") or "—",
        "metrics": device.get("metrics") or {},
    }


def devices(hub: HubClient, now: dt.datetime) -> list[dict[str, Any]]:
    return [_device_row(d, now) for d in hub.get("/devices")]


def device(hub: HubClient, device_id: str, now: dt.datetime) -> dict[str, Any]:
    row = _device_row(hub.get(f"/devices/{urllib.parse.quote(device_id, safe='')}"), now)
    row["detections"] = [
        {**d, "detected_at": _time(d["detected_at"])}
        for d in hub.get("/detections", device=device_id, limit=50)
    ]
    row["alarm_history"] = [
        {**a, "opened_at": _time(a["opened_at"]), "closed_at": _time(a["closed_at"])}
        for a in hub.get("/alarms")
        if a["device_id"] == device_id
    ]
    return row


def species_over_time(hub: HubClient, bucket: str) -> dict[str, Any]:
    """A table: one row per species, one column per hour or day, detections in each cell."""
    if bucket not in ("hour", "day"):
        raise InvalidArgumentError(f"bucket: {bucket!r} is neither hour nor day")
    cells = hub.get("/species", bucket=bucket)
    buckets = sorted({c["bucket"] for c in cells})
    table: dict[str, dict[str, int]] = {}
    devices_of: dict[str, int] = {}
    for c in cells:
        name = c["species"] or "(no species tag)"
        table.setdefault(name, {})[c["bucket"]] = c["detections"]
        devices_of[name] = c["devices_total"]
    return {
        "buckets": [_time(b) for b in buckets],
        "rows": [
            {
                "species": name,
                "cells": [counts.get(b, 0) for b in buckets],
                "total": sum(counts.values()),
                "devices": devices_of[name],
            }
            for name, counts in sorted(table.items())
        ],
    }
