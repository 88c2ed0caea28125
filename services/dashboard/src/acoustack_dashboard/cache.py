"""Rendered spectrograms kept on disk: a file's image is made once (its key changes when the file
or its detections do) and the oldest images go when the cache outgrows its size."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path


class ImageCache:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
        path = self.folder / f"{key}.png"
        try:
            data = path.read_bytes()
            os.utime(path)  # recently used: evicted last
            return data
        except FileNotFoundError:
            pass
        data = make()
        if self.max_bytes <= 0:
            return data
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        self._evict()
        return data

    def _evict(self) -> None:
        with self._lock:
            files = []
            for entry in os.scandir(self.folder):
                if entry.name.endswith(".png"):
                    stat = entry.stat()
                    files.append((stat.st_mtime, stat.st_size, entry.path))
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files):
                if total <= self.max_bytes:
                    break
                Path(path).unlink(missing_ok=True)
                total -= size
