"""Pure-Python references for differential tests of the compiled core.

Slow and obvious on purpose: each function follows its definition, not the
optimisations of native/.
"""

from __future__ import annotations

from fractions import Fraction

CRC64_XZ_POLY_REFLECTED = 0xC96C5795D7870F42  # 0x42F0E1EBA9EA3693 bit-reversed
MASK64 = (1 << 64) - 1


def crc64_xz(data: bytes, crc: int = 0) -> int:
    """CRC-64/XZ bit by bit: reflected, init and xorout all ones."""
    reg = crc ^ MASK64
    for byte in data:
        reg ^= byte
        for _ in range(8):
            reg = (reg >> 1) ^ (CRC64_XZ_POLY_REFLECTED if reg & 1 else 0)
    return reg ^ MASK64


def round_half_even(x: Fraction) -> int:
    """Round an exact rational to the nearest integer, ties to even."""
    floor = x.numerator // x.denominator
    rest = x - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def quantize_one(value: float, inv_scale: float) -> int:
    """What the kernel computes: the IEEE double product, rounded half to even.

    The product is rounded to a double first (one multiplication, no FMA);
    Fraction(value * inv_scale) is exactly that double.
    """
    product = value * inv_scale
    return round_half_even(Fraction(product))


def zigzag(d: int) -> int:
    d &= MASK64
    signed = d - (1 << 64) if d >> 63 else d
    return ((signed << 1) ^ (signed >> 63)) & MASK64


def unzigzag(z: int) -> int:
    return ((z >> 1) ^ -(z & 1)) & MASK64


def deltas(values: list[int], order: int) -> list[int]:
    """Residuals of the given order, mod 2^64 (what the codec bit-packs)."""
    v = [x & MASK64 for x in values]
    for _ in range(order):
        v = [(b - a) & MASK64 for a, b in zip(v, v[1:])]
    return v


def ordered(records: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(timestamp, arrival) order: what the append buffer must hand out."""
    return sorted(records, key=lambda r: r[0])  # sorted() is stable: ties keep arrival order
