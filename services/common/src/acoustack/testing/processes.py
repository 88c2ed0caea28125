"""The processes below a process, from /proc (Linux): a service's worker and its pool children."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children first, then theirs)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended while we looked
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - set(found)
        found.extend(sorted(frontier))
    return found
