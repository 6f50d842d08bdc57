"""The history of a W&B run from its ``run-<id>.wandb`` file: all that an offline run of wandb
0.31 keeps of its steps (no ``wandb-history.jsonl``, no ``wandb-summary.json`` until it is
synced). wandb has no Python reader of that file any more (its ``sdk/internal/datastore.py`` is
gone; ``wandb sync`` reads it in Go), so the framing is read here and each record is parsed by
wandb's own protobuf ``Record``: importing wandb happens only where such a file is found.

The framing is LevelDB's log format behind a 7-byte header (``:W&B``, magic ``0xBEE1``,
version 0): 32 KiB blocks of records, each ``crc32 (4) | length (2) | type (1) | data``, a
record longer than a block's rest split in FIRST, MIDDLE and LAST parts, a block's last few
bytes zero padding. The CRC is zlib's, seeded with the CRC of the type byte.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_IDENT, _MAGIC, _VERSION = b":W&B", 0xBEE1, 0
_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_SEED = {kind: zlib.crc32(bytes([kind])) for kind in (_FULL, _FIRST, _MIDDLE, _LAST)}
NO_WANDB = "wandb is not installed, its run-*.wandb files are not read (pip install wandb)"


class StoreError(ValueError):
    """Not a W&B store this reader knows (another header or version)."""


def store_records(data: bytes) -> Iterator[bytes]:
    """Each whole record of a store's bytes, in order. A run still writing, or killed, leaves
    its last record cut short (or, past a crash, zeros): reading stops there, quietly.

    Raises:
        StoreError: ``data`` starts with no store header of version 0.
    """
    if len(data) < _HEADER:
        raise StoreError("no W&B store header")
    ident, magic, version = struct.unpack_from("<4sHB", data)
    if ident != _IDENT or magic != _MAGIC:
        raise StoreError("no W&B store header")
    if version != _VERSION:
        raise StoreError(f"a W&B store of version {version}, not read")
    offset, parts = _HEADER, list[bytes]()
    while True:
        left = _BLOCK - offset % _BLOCK
        if left < _HEADER:  # too little for a record header: the block's padding
            offset += left
        if offset + _HEADER > len(data):
            return
        checksum, length, kind = struct.unpack_from("<IHB", data, offset)
        start = offset + _HEADER
        chunk = data[start : start + length]
        if kind not in _SEED or len(chunk) < length or zlib.crc32(chunk, _SEED[kind]) != checksum:
            return
        offset = start + length
        if kind == _FULL:
            parts = []
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif parts:  # a MIDDLE or LAST part without its FIRST is passed over
            parts.append(chunk)
            if kind == _LAST:
                yield b"".join(parts)
                parts = []


def read_store_history(path: Path) -> list[dict[str, Any]]:
    """The rows a run logged (``wandb.log``), each a mapping of key to value as wandb keeps it
    (``_step``, ``_runtime``, ``global_step`` with the run's own keys).

    Raises:
        ModuleNotFoundError: wandb is not installed.
        StoreError: not a store of a version this reader knows.
        OSError: the file cannot be read.
    """
    # Imported here: an optional package of 700 modules; only a run logged to W&B needs it.
    from wandb.proto import wandb_internal_pb2

    rows: list[dict[str, Any]] = []
    for data in store_records(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        try:
            record.ParseFromString(data)
        except Exception:  # protobuf's DecodeError: one record wandb wrote wrong, not the rest
            continue
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in record.history.item:
            # wandb 0.31 names a key by its nested_key (["loss"]); older versions by key.
            name = item.key or ".".join(item.nested_key)
            try:
                row[name] = json.loads(item.value_json)
            except ValueError:
                continue
        rows.append(row)
    return rows
