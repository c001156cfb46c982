"""An in-memory stand-in for SenseTime's ``petrel_client`` SDK (importable as
``fake_petrel_client``): ``install(monkeypatch)`` makes ``from petrel_client import client``
give it.

Objects are bytes in a dict keyed by their full URI. As in the SDK, ``Get`` gives None for a
missing object, ``isdir`` is true for a prefix with objects under it, and ``list`` of a
``.../`` prefix yields the names directly under it, folders with a trailing ``/``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any


class Client:
    """The SDK's client, storing objects in :attr:`objects`."""

    def __init__(self, conf_path: str | None = None, enable_mc: bool = True) -> None:
        self.conf_path = conf_path
        self.enable_mc = enable_mc
        self.objects: dict[str, bytes] = {}

    def Get(self, uri: str) -> bytes | None:  # the SDK spells it so
        return self.objects.get(uri)

    def put(self, uri: str, content: bytes) -> int:
        self.objects[uri] = bytes(content)
        return len(content)

    def contains(self, uri: str) -> bool:
        return uri in self.objects

    def delete(self, uri: str) -> None:
        del self.objects[uri]

    def isdir(self, uri: str) -> bool:
        prefix = uri.rstrip("/") + "/"
        return any(key.startswith(prefix) for key in self.objects)

    def list(self, uri: str) -> Iterator[str]:
        seen: set[str] = set()
        for key in sorted(self.objects):
            if not key.startswith(uri):
                continue
            head, slash, _ = key[len(uri) :].partition("/")
            name = head + slash
            if name not in seen:
                seen.add(name)
                yield name


def install(monkeypatch: Any) -> None:
    """Make ``petrel_client`` importable as this fake for the test, with no cached backends."""
    from torchkiln.fileio import registry

    package = types.ModuleType("petrel_client")
    module = types.ModuleType("petrel_client.client")
    module.Client = Client  # type: ignore[attr-defined]
    package.client = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "petrel_client", package)
    monkeypatch.setitem(sys.modules, "petrel_client.client", module)
    monkeypatch.setattr(registry, "_INSTANCES", {})
