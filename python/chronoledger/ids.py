"""Row ids shared by the stores: UUID version 7 (RFC 9562), time-ordered."""

from __future__ import annotations

import os
import time

import numpy as np


def new_id() -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random
    bits.  Time-ordered ids keep the primary-key B-trees appending at their
    right edge instead of splitting pages at random places."""
    return _uuid7(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10), "big"))


def new_ids(n: int) -> list[str]:
    """n UUIDv7s of this millisecond, built as one byte array (a batch of
    turns would otherwise spend more on its ids than on its checks)."""
    if n <= 0:
        return []
    raw = np.frombuffer(bytearray(os.urandom(16 * n)), np.uint8).reshape(n, 16)
    raw[:, :6] = np.frombuffer((time.time_ns() // 1_000_000 & ((1 << 48) - 1)).to_bytes(6, "big"), np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70          # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80          # variant 10
    text = np.full((n, 36), ord("-"), np.uint8)
    text[:, _HEX_AT[0::2]] = _HEX_DIGITS[raw >> 4]
    text[:, _HEX_AT[1::2]] = _HEX_DIGITS[raw & 0x0F]
    s = text.tobytes().decode("ascii")
    ids = [s[i:i + 36] for i in range(0, 36 * n, 36)]
    # in order, like ids made one after another: rows inserted in this order
    # append to the primary-key B-tree instead of landing at random in it
    ids.sort()
    return ids


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_HEX_AT = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])   # where the 32 digits go


def _uuid7(ms: int, rand80: int) -> str:
    rand_a = (rand80 >> 62) & 0xFFF
    rand_b = rand80 & ((1 << 62) - 1)
    v = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
