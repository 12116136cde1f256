"""Loaded backbones shared by the app's pages and its job workers (see BackboneCache)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..errors import DaptError


@dataclass(frozen=True)
class Availability:
    ok: bool
    spec: str
    message: str | None = None  # why not, when not ok
    description: dict | None = None
    checked: float = 0.0


class BackboneCache:
    """Loaded backbones by (spec, device), shared by the app and the workers, the `keep` most recently
    used ones only.

    A backbone is frozen and never changed by tuning (only the prompts learn), so one instance
    can serve several threads. Failed loads are remembered for a while, since a check for
    unavailable weights costs seconds. The Tune page checks every backbone a user types, so without
    a limit a long-running server would hold each of them (a ViT-B/16 is about 600 MB): the least
    recently used one is let go (a job still running on it keeps its own reference until it ends)."""

    RETRY_AFTER = 120.0
    KEEP = 2  # e.g. the demo model and the backbone being tuned

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()  # least recently used first
        self._failed: dict[tuple[str, str], Availability] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def get(self, spec: str, device: str | None = None):
        """The loaded backbone; raises BackboneUnavailable."""
        from ..engine.backbone import load_backbone
        from ..engine.device import pick_device

        key = (spec.strip(), str(pick_device(device)))
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # two sessions asking at once load it once
            with self._lock:
                if key in self._loaded:
                    self._loaded.move_to_end(key)
                    return self._loaded[key]
            try:
                backbone = load_backbone(key[0], key[1])
            except DaptError as error:
                with self._lock:
                    self._failed[key] = Availability(False, key[0], str(error), checked=time.time())
                raise
            with self._lock:
                self._loaded[key] = backbone
                self._failed.pop(key, None)
                while len(self._loaded) > max(1, self.keep):
                    self._loaded.popitem(last=False)
            return backbone

    def check(self, spec: str, device: str | None = None, *, again: bool = False) -> Availability:
        """Whether `spec` can be loaded here (loading it if so, which makes Start fast)."""
        from ..engine.device import pick_device

        key = (spec.strip(), str(pick_device(device)))
        with self._lock:
            failed = self._failed.get(key)
        if failed is not None and not again and time.time() - failed.checked < self.RETRY_AFTER:
            return failed
        try:
            backbone = self.get(spec, device)
        except DaptError as error:
            return Availability(False, key[0], str(error), checked=time.time())
        return Availability(True, key[0], None, backbone.describe(), time.time())


BACKBONES = BackboneCache()
