"""Read the records of a W&B offline run file (``run-<id>.wandb``) without the network.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic ``0xBEE1``, version 0),
then 32 KiB blocks of chunks, each with a 7-byte header (CRC-32C, length, type: full, first,
middle, last) and a piece of one serialized ``wandb.proto.wandb_internal_pb2.Record``. Chunk
checksums are not verified here (a torn last record simply fails to parse and is skipped).

:func:`read_history` gives the logged rows (``{"_step": 0, "loss": 0.4, "step": 2}``),
:func:`offline_run_files` finds a run's files under a W&B directory; together they let a
resumed run see which steps an earlier part already logged, and tests read back a run.
"""

from __future__ import annotations

import glob
import json
import os
import struct
from collections.abc import Iterator
from typing import Any

__all__ = ["offline_run_files", "read_config", "read_history", "read_records"]

_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    ident, magic, version = _HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError("not a W&B run file (bad header)")
    pos = _HEADER.size
    pending = bytearray()
    while pos + _CHUNK.size <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _CHUNK.size:  # the block's tail is padding
            pos += left_in_block
            continue
        _crc, length, kind = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        piece = data[pos : pos + length]
        pos += length
        if len(piece) < length:
            return  # cut short: the writer stopped mid-record
        if kind == _FULL:
            yield bytes(piece)
        elif kind == _FIRST:
            pending = bytearray(piece)
        elif kind == _MIDDLE:
            pending += piece
        elif kind == _LAST:
            pending += piece
            yield bytes(pending)
            pending = bytearray()
        else:
            return


def read_records(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The ``Record`` protobufs of a run file, in order (unreadable ones skipped)."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as fh:
        data = fh.read()
    for payload in _payloads(data):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(payload)
        except DecodeError:
            continue
        yield record


def _item_key(item: Any) -> str:
    return item.key if item.key else "/".join(item.nested_key)


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The history rows (one per committed ``wandb.log``) of a run file."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in record.history.item:
            try:
                row[_item_key(item)] = json.loads(item.value_json)
            except ValueError:
                row[_item_key(item)] = item.value_json
        rows.append(row)
    return rows


def offline_run_files(wandb_dir: str | os.PathLike[str], run_id: str) -> list[str]:
    """The ``run-<id>.wandb`` files of run ``run_id`` under ``wandb_dir`` (its ``wandb/``
    sub-folder or itself), oldest first."""
    root = os.fspath(wandb_dir)
    found = []
    for base in (os.path.join(root, "wandb"), root):
        found += glob.glob(
            os.path.join(glob.escape(base), f"*run-*-{run_id}", f"run-{run_id}.wandb")
        )
    return sorted(set(found), key=os.path.getmtime)


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The run config a run file holds (its ``run`` record and later config updates)."""
    config: dict[str, Any] = {}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        items = (
            record.run.config.update
            if kind == "run"
            else record.config.update
            if kind == "config"
            else ()
        )
        for item in items:
            try:
                value = json.loads(item.value_json)
            except ValueError:
                value = item.value_json
            if isinstance(value, dict) and set(value) == {"value"}:  # W&B wraps config values
                value = value["value"]
            config[_item_key(item)] = value
    return config
