"""The server's config file (written by the studio, mode 0600), re-read when it changes.

Keys are regenerated without a restart: the studio rewrites the file, and the next
request after the check interval sees the new mtime and loads it. The model directory is
read once at start (a new model is a new deployment).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("mlstudio_scoring")

# How often a request may stat the file: a stat per request costs little, but there is
# no need for more than a few per second.
CHECK_INTERVAL_S = 0.25


@dataclasses.dataclass(frozen=True)
class Config:
    service: str = ""
    service_id: int | None = None
    model_dir: str = ""
    auth_enabled: bool = True
    key_hashes: tuple[str, ...] = ()
    token_secret: str = ""
    telemetry_url: str | None = None
    telemetry_token: str | None = None
    telemetry_interval_s: float = 5.0
    sample_rate: float = 1.0
    sample_max_rows: int = 100

    @classmethod
    def from_dict(cls, raw: dict) -> Config:
        if not isinstance(raw, dict):
            raise ValueError("the config file must hold a JSON object")
        return cls(
            service=str(raw.get("service") or ""),
            service_id=raw.get("service_id"),
            model_dir=str(raw.get("model_dir") or ""),
            auth_enabled=bool(raw.get("auth_enabled", True)),
            key_hashes=tuple(str(h).lower() for h in raw.get("key_hashes") or () if h),
            token_secret=str(raw.get("token_secret") or ""),
            telemetry_url=raw.get("telemetry_url") or None,
            telemetry_token=raw.get("telemetry_token") or None,
            telemetry_interval_s=max(0.2, float(raw.get("telemetry_interval_s") or 5)),
            sample_rate=min(1.0, max(0.0, float(raw.get("sample_rate", 1.0)))),
            sample_max_rows=max(0, int(raw.get("sample_max_rows", 100))),
        )


def read_config(path: str | os.PathLike) -> Config:
    return Config.from_dict(json.loads(Path(path).read_text()))


class ConfigWatcher:
    """Holds the current Config; `current()` reloads it when the file's mtime changed.

    A file caught half-written (bad JSON) keeps the previous config until the next
    change, so a request never sees a broken one."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime = self._stat()
        self.config = read_config(self.path)
        self._next_check = time.monotonic() + CHECK_INTERVAL_S

    def _stat(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def current(self) -> Config:
        now = time.monotonic()
        if now < self._next_check:
            return self.config
        with self._lock:
            self._next_check = now + CHECK_INTERVAL_S
            mtime = self._stat()
            if mtime is not None and mtime != self._mtime:
                try:
                    self.config = read_config(self.path)
                    self._mtime = mtime
                    log.info("config reloaded (%s)", self.path.name)
                except (OSError, ValueError) as exc:
                    log.warning("config not reloaded, keeping the previous one: %s", exc)
        return self.config
