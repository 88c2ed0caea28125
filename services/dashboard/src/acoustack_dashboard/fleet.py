"""The fleet pages' data (hub mode): the hub's JSON API read, and what each page shows.

The dashboard opens no database of the hub's either: it asks the hub over HTTP
(services/hub: /devices, /devices/<id>, /detections, /species, /alarms).
"""

from __future__ import annotations

import datetime as dt
import json
import math
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
        "deployment_name": device.get("deployment_name"),
        "latitude": device.get("latitude"),
        "longitude": device.get("longitude"),
        # The map's colour: silent wins over degraded (a silent device's verdict is stale).
        "map_state": "silent" if "silent" in alarms else ("degraded" if state != "ok" else "ok"),
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


# --- the fleet map: drawn here, no tile server (none is reachable in the field) ---------------

MAP_WIDTH, MAP_HEIGHT = 760, 460  # the plot, in SVG units; labels go in the padding
LABEL_SPACING = 70  # at least this far apart, so the degrees' labels never overlap
MAP_PAD_LEFT, MAP_PAD_BOTTOM, MAP_PAD = 64, 28, 12
MIN_SPAN_DEG = 0.02  # one device, or several at one site: about 2 km shown around it
# Graticule steps, in degrees, from a few hundred metres to a continent.
STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30)


@dataclass(frozen=True)
class FleetMap:
    width: int  # the whole SVG
    height: int
    plot: tuple[int, int, int, int]  # x, y, width, height of the mapped area
    meridians: list[tuple[float, str]]  # (x, label)
    parallels: list[tuple[float, str]]  # (y, label)
    markers: list[dict[str, Any]]  # a device row with its x, y
    unplaced: list[dict[str, Any]]  # devices whose heartbeats never said where they are


def _step(span: float, length: float) -> float:
    """The smallest step whose lines across ``span`` degrees (``length`` units) are at least
    LABEL_SPACING apart."""
    most = max(length // LABEL_SPACING, 2)
    return next((s for s in STEPS if span / s <= most), STEPS[-1])


def _label(value: float, step: float, positive: str, negative: str) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    hemisphere = positive if value > 0 else (negative if value < 0 else "")
    return f"{abs(value):.{decimals}f}°{hemisphere}"


def _lines(low: float, high: float, step: float) -> list[float]:
    first = math.ceil(low / step - 1e-9)
    return [i * step for i in range(first, math.floor(high / step + 1e-9) + 1)]


def fleet_map(rows: list[dict[str, Any]]) -> FleetMap:
    """Equirectangular, with the east-west scale of the middle latitude so a site keeps its
    shape; the devices' extent and a tenth of it as margin fitted into the frame, then widened
    (or heightened) to fill it. (A fleet straddling the 180th meridian is drawn the long way
    round.)"""
    placed = [r for r in rows if r["latitude"] is not None and r["longitude"] is not None]
    unplaced = [r for r in rows if r not in placed]
    if not placed:
        return FleetMap(0, 0, (0, 0, 0, 0), [], [], [], unplaced)
    lats = [r["latitude"] for r in placed]
    lons = [r["longitude"] for r in placed]

    def spread(values: list[float]) -> float:
        return max((max(values) - min(values)) * 1.2, MIN_SPAN_DEG)

    def around(values: list[float], span: float, limit: float) -> tuple[float, float]:
        middle = (min(values) + max(values)) / 2
        low = min(max(middle - span / 2, -limit), limit - span)
        return max(low, -limit), min(low + span, limit)

    middle_lat = (min(lats) + max(lats)) / 2
    shrink = max(math.cos(math.radians(middle_lat)), 0.05)
    lat_span, lon_span = spread(lats), spread(lons)
    scale = min(MAP_WIDTH / (lon_span * shrink), MAP_HEIGHT / lat_span)  # units per degree
    south, north = around(lats, min(MAP_HEIGHT / scale, 180.0), 90.0)
    west, east = around(lons, min(MAP_WIDTH / (shrink * scale), 360.0), 180.0)
    plot_w = round((east - west) * shrink * scale)
    plot_h = round((north - south) * scale)
    x0, y0 = MAP_PAD_LEFT, MAP_PAD

    def x(lon: float) -> float:
        return round(x0 + (lon - west) * shrink * scale, 1)

    def y(lat: float) -> float:
        return round(y0 + (north - lat) * scale, 1)

    lon_step, lat_step = _step(east - west, plot_w), _step(north - south, plot_h)
    return FleetMap(
        width=x0 + plot_w + MAP_PAD,
        height=y0 + plot_h + MAP_PAD_BOTTOM,
        plot=(x0, y0, plot_w, plot_h),
        meridians=[(x(v), _label(v, lon_step, "E", "W")) for v in _lines(west, east, lon_step)],
        parallels=[(y(v), _label(v, lat_step, "N", "S")) for v in _lines(south, north, lat_step)],
        markers=[r | {"x": x(r["longitude"]), "y": y(r["latitude"])} for r in placed],
        unplaced=unplaced,
    )
