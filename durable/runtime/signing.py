"""Signed records, heads and events: HMAC-SHA256 bound to the instance and the place.

A signed record's MAC covers the instance id, its sequence number in the instance's history
and the MAC of the record before it, so a record moved to another instance or place, a log
spliced or reordered, and a head naming more than the log holds are refused unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Sequence
from typing import NamedTuple

from .._errors import CorruptStateError

#: Chained records: this prefix, the MAC, the sequence number and the kind, then the payload.
_CHAINED = b"DURABLE-HMAC-CHAIN-1\x00"
_CHAINED_HEADER = struct.Struct(f">{len(_CHAINED)}s32sQB")
#: The signed head of a log: this prefix, its MAC, the last sequence number and its MAC.
_HEAD = b"DURABLE-HMAC-HEAD-1\x00"
_HEAD_FORMAT = struct.Struct(f">{len(_HEAD)}s32sQ32s")
#: Events bound to their instance: this prefix, the MAC and the event's own nonce.
_BOUND_EVENT = b"DURABLE-HMAC-EVENT-1\x00"
_EVENT_HEADER = struct.Struct(f">{len(_BOUND_EVENT)}s32s16s")
#: The first format: the MAC of the bytes alone (still read; a log holding one is rewritten
#: in the chained format by its next write).
_LEGACY = b"DURABLE-HMAC-SHA256\x00"
_LEGACY_SIZE = len(_LEGACY)
_MAC_SIZE = 32
#: What a log's first record chains to.
_NO_MAC = bytes(_MAC_SIZE)
#: A record's kind: the first of a log (a new instance or a compaction), or one after it.
STARTS_LOG, CONTINUES_LOG = 1, 2
_PREFIXES = (_CHAINED, _HEAD, _BOUND_EVENT, _LEGACY)


class LogEnd(NamedTuple):
    """Where an instance's signed history stands: the last record's sequence number (0 for
    none) and its MAC, what the next record chains to."""

    seq: int
    mac: bytes


EMPTY_LOG_END = LogEnd(0, _NO_MAC)


class OpenedLog(NamedTuple):
    """A log whose signatures were checked: the payloads, where it ends, the MACs of its
    records by sequence number, and whether it holds records of the first format."""

    payloads: list[bytes]
    end: LogEnd
    first_seq: int
    macs: list[bytes]
    legacy: bool


class Seals:
    """Signs and checks what a backend stores, under `key` (None: nothing is signed, and
    signed bytes are refused). `verify_keys` are earlier keys still accepted (rotation)."""

    def __init__(self, key: bytes | None, verify_keys: Sequence[bytes] = ()) -> None:
        self.key = key
        #: The key's MAC first (it signs), then the earlier keys' (they only verify).
        self._keys = tuple(map(_Mac, (key, *verify_keys))) if key is not None else ()
        self._signer = self._keys[0] if self._keys else None

    # -- records ------------------------------------------------------------------------
    def seal_record(
        self, instance_id: str, end: LogEnd, payload: bytes, *, starts_log: bool = False
    ) -> tuple[bytes, LogEnd]:
        """The record of `payload` numbered after `end`, and the end it makes: the first of
        a log when `starts_log` (a compaction) or `end` is empty, else chained to `end`.
        Unsigned without a key."""
        if self.key is None:
            return payload, end
        seq = end.seq + 1
        kind = STARTS_LOG if starts_log or end.seq == 0 else CONTINUES_LOG
        prev = end.mac if kind == CONTINUES_LOG else _NO_MAC
        mac = self._signer.digest(_record_message(instance_id, seq, kind, prev, payload))
        return _CHAINED_HEADER.pack(_CHAINED, mac, seq, kind) + payload, LogEnd(seq, mac)

    def open_log(self, instance_id: str, records: Sequence[bytes]) -> OpenedLog:
        """The payloads of `records` once each signature and its place in the chain is
        checked; `CorruptStateError` naming the instance and the record otherwise, before
        anything is unpickled."""
        if self.key is None:
            for number, data in enumerate(records, 1):
                if data.startswith(_PREFIXES):
                    raise _refused(instance_id, f"record {number} of its log", _NEEDS_KEY)
            return OpenedLog(list(records), EMPTY_LOG_END, 1, [], False)
        payloads: list[bytes] = []
        macs: list[bytes] = []
        end = EMPTY_LOG_END
        first_seq = 1
        legacy = False
        for number, data in enumerate(records, 1):
            what = f"record {number} of its log"
            if data.startswith(_CHAINED):
                if len(data) < _CHAINED_HEADER.size:
                    raise _refused(instance_id, what, _ALTERED)
                _, mac, seq, kind = _CHAINED_HEADER.unpack_from(data)
                if number == 1:
                    if kind != STARTS_LOG:
                        raise _refused(
                            instance_id,
                            what,
                            "is not the start of a log, but the log begins with it: records "
                            "before it were removed",
                        )
                    prev, first_seq = _NO_MAC, seq
                elif kind != CONTINUES_LOG or seq != end.seq + 1:
                    raise _refused(
                        instance_id,
                        what,
                        f"is record {seq} of the instance's history where {end.seq + 1} "
                        "belongs: records were removed, reordered or copied in",
                    )
                else:
                    prev = end.mac
                payload = data[_CHAINED_HEADER.size :]
                if not self._verified(mac, _record_message(instance_id, seq, kind, prev, payload)):
                    raise _refused(instance_id, what, _ALTERED)
                end = LogEnd(seq, mac)
            elif data.startswith(_LEGACY):
                payload = self._open_legacy(instance_id, what, data)
                end = LogEnd(end.seq + 1, data[_LEGACY_SIZE : _LEGACY_SIZE + _MAC_SIZE])
                legacy = True
            else:
                raise _refused(instance_id, what, _UNSIGNED)
            payloads.append(payload)
            macs.append(end.mac)
        return OpenedLog(payloads, end, first_seq, macs, legacy)

    # -- heads --------------------------------------------------------------------------
    def seal_head(self, instance_id: str, end: LogEnd) -> bytes:
        """The signed head naming `end` as the last record written."""
        assert self.key is not None
        mac = self._signer.digest(_head_message(instance_id, end))
        return _HEAD_FORMAT.pack(_HEAD, mac, end.seq, end.mac)

    def check_head(self, instance_id: str, head: bytes | None, log: OpenedLog) -> None:
        """Refuse a log that ends before its signed head says records were written (cut
        back to an earlier prefix), or that holds another record at the head's place."""
        if head is None or self.key is None:
            return
        if len(head) != _HEAD_FORMAT.size or not head.startswith(_HEAD):
            raise _refused(instance_id, "the head of its log", "is not a signed head")
        _, mac, seq, last_mac = _HEAD_FORMAT.unpack(head)
        if not self._verified(mac, _head_message(instance_id, LogEnd(seq, last_mac))):
            raise _refused(instance_id, "the head of its log", _ALTERED)
        if seq > log.end.seq:
            raise CorruptStateError(
                f"instance {instance_id!r}: its log was cut back: it ends at record "
                f"{log.end.seq} of the instance's history, but its signed head says record "
                f"{seq} was written; acknowledged writes are missing (restore the store from "
                "a backup taken after them), so it was not loaded"
            )
        index = seq - log.first_seq
        if 0 <= index < len(log.macs) and not hmac.compare_digest(log.macs[index], last_mac):
            raise _refused(
                instance_id,
                f"record {index + 1} of its log",
                "is not the record its signed head names at that place: the log was "
                "replaced by another history",
            )

    # -- events -------------------------------------------------------------------------
    def seal_event(self, instance_id: str, payload: bytes) -> bytes:
        """`payload` bound to `instance_id` under a nonce of its own; unsigned without a key."""
        if self.key is None:
            return payload
        nonce = time.time_ns().to_bytes(8, "big") + os.urandom(8)
        mac = self._signer.digest(_event_message(instance_id, nonce, payload))
        return _EVENT_HEADER.pack(_BOUND_EVENT, mac, nonce) + payload

    def open_event(self, instance_id: str, event_id: int, data: bytes) -> bytes:
        what = f"event {event_id}"
        if self.key is None:
            if data.startswith(_PREFIXES):
                raise _refused(instance_id, what, _NEEDS_KEY)
            return data
        if data.startswith(_BOUND_EVENT) and len(data) >= _EVENT_HEADER.size:
            _, mac, nonce = _EVENT_HEADER.unpack_from(data)
            payload = data[_EVENT_HEADER.size :]
            if self._verified(mac, _event_message(instance_id, nonce, payload)):
                return payload
            raise _refused(
                instance_id,
                what,
                "failed its signature check (it was altered, published to another instance, "
                "or signed with another key); it was not loaded",
            )
        if data.startswith(_LEGACY):
            return self._open_legacy(instance_id, what, data)
        raise _refused(instance_id, what, _UNSIGNED)

    def _open_legacy(self, instance_id: str, what: str, data: bytes) -> bytes:
        mac = data[_LEGACY_SIZE : _LEGACY_SIZE + _MAC_SIZE]
        payload = data[_LEGACY_SIZE + _MAC_SIZE :]
        if self._verified(mac, payload):
            return payload
        raise _refused(instance_id, what, _ALTERED)

    def _verified(self, mac: bytes, message: bytes) -> bool:
        """Whether `mac` is the MAC of `message` under the key or an earlier one."""
        return any(hmac.compare_digest(mac, key.digest(message)) for key in self._keys)


class _Mac:
    """HMAC-SHA256 under one key, its padded key blocks hashed once (RFC 2104): a record's
    MAC then costs two hash updates instead of deriving them at every record."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_BLOCK = 64  # SHA-256's block size


def _bound(instance_id: str) -> bytes:
    name = instance_id.encode("utf-8")
    return len(name).to_bytes(4, "big") + name


# What each MAC is the MAC of: a prefix naming the kind, the instance, the place, the bytes.
def _record_message(instance_id: str, seq: int, kind: int, prev: bytes, payload: bytes) -> bytes:
    return _CHAINED + _bound(instance_id) + _SEQ_KIND.pack(seq, kind) + prev + payload


def _head_message(instance_id: str, end: LogEnd) -> bytes:
    return _HEAD + _bound(instance_id) + end.seq.to_bytes(8, "big") + end.mac


def _event_message(instance_id: str, nonce: bytes, payload: bytes) -> bytes:
    return _BOUND_EVENT + _bound(instance_id) + nonce + payload


_SEQ_KIND = struct.Struct(">QB")


def _refused(instance_id: str, what: str, reason: str) -> CorruptStateError:
    return CorruptStateError(f"instance {instance_id!r}: {what} {reason}")


_ALTERED = (
    "failed its signature check (it was altered, belongs to another instance or another place "
    "in the log, or was signed with another key); it was not loaded"
)
_UNSIGNED = (
    "is not signed, and this backend loads only state signed with its secret key; it was not loaded"
)
_NEEDS_KEY = (
    "is signed; open the store with its secret key (DurableBackend(..., secret_key=...), or "
    "DURABLE_SECRET_KEY for the command line and the default backend)"
)
