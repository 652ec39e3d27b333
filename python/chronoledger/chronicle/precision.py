"""How precisely each float of a chronicle is stored.

Two ways, chosen per field and per metric (or per event value):

- **exact** (the default): the float's own bits.  The cycle fields the
  specification types ``f32`` (loss_value, coherence, tensor_signature) keep
  their float32 value; metrics and event values their float64 value.  NaN,
  the infinities and -0.0 come back bit for bit.
- **fixed point at a scale** (the specification's quantization, e.g. 1e-6):
  ``round-half-even(value / scale)`` as an integer, read back as
  ``q * scale``; smaller on disk for smooth series, and the same integers on
  every machine.  NaN and the infinities are kept exactly beside the integers.

Nothing is stored as anything but itself without an error or an explicit
choice: by default every float is exact, so a learning rate of 1e-8 is
1e-8; a value its exact form cannot hold (``1e-50`` or ``1e39`` as
float32) is refused with a :class:`ValidationError` naming the field.
Asking for a scale is the explicit choice to round: every value becomes the
nearest multiple of the scale (so one smaller than half of it becomes 0);
only a value too large for the integers is refused.

A precision is given as ``precision=`` when a chronicle is created:

- ``None``: everything exact;
- a number: every float fixed point at that scale (what ``scale=`` meant);
- a mapping of field names to ``"exact"`` or a scale: ``"loss_value"``,
  ``"coherence"``, ``"tensor_signature"`` (all three), ``"metrics"`` (the
  default of every metric), ``"metrics.lr"`` (one metric); for event logs
  ``"values"`` and ``"values.NAME"``.  Fields not named are exact.

The precision is kept in the file's header metadata (``"precision"``), so
whoever appends later stores values the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from chronoledger.errors import ConfigError, ValidationError

EXACT = "exact"
#: |value| / scale must stay below this for the integer to fit int64 (as core.quantize requires)
FIXED_LIMIT = 9.2e18
F32_MAX = float(np.finfo(np.float32).max)

CYCLE_FIELDS = ("loss_value", "coherence", "tensor_signature.0", "tensor_signature.1", "tensor_signature.2")
#: What a user may write in a precision mapping, by schema, besides DYNAMIC.NAME keys.
_KEYS = {"cycle": ("loss_value", "coherence", "tensor_signature", "metrics"), "event": ("values",)}
_DYNAMIC = {"cycle": "metrics", "event": "values"}

#: A field's precision as given: "exact" or a scale.
Spec = Union[str, float]


def _scale_of(key: str, value: object) -> float | None:
    """None for exact, else the scale; ConfigError for anything else."""
    if value == EXACT or value is None:
        return None
    try:
        scale = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:                   # an int too large for a float
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0 or not math.isfinite(1.0 / scale):
        raise ConfigError(f"precision of {key!r}: expected {EXACT!r} or a scale > 0 (e.g. 1e-6), got {value!r:.80}")
    return scale


@dataclass(frozen=True)
class Precision:
    """The precision of every float of one chronicle: a scale per field
    (None = exact) and for the dynamic columns (metrics / values) a default
    and per-name overrides."""

    schema: str
    fields: tuple[float | None, ...]         # CYCLE_FIELDS order; () for an event log
    dynamic: float | None
    named: tuple[tuple[str, float | None], ...] = ()

    @classmethod
    def parse(cls, spec: object, schema: str) -> "Precision":
        """From what a user passes as ``precision=`` (see the module docstring)."""
        if spec is None or isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
            scale = _scale_of("precision", spec)
            return cls(schema, (scale,) * (5 if schema == "cycle" else 0), scale)
        if not isinstance(spec, Mapping):
            raise ConfigError(f"precision: expected None, {EXACT!r}, a scale or a mapping of field names, "
                              f"got {type(spec).__name__}")
        dyn = _DYNAMIC[schema]
        fields: dict[str, float | None] = {}
        named: dict[str, float | None] = {}
        default: float | None = None
        for key, value in spec.items():
            if not isinstance(key, str):
                raise ConfigError(f"precision: field names are strings, got {key!r}")
            scale = _scale_of(key, value)
            if key == dyn:
                default = scale
            elif key.startswith(dyn + ".") and len(key) > len(dyn) + 1:
                named[key[len(dyn) + 1:]] = scale
            elif key == "tensor_signature" and schema == "cycle":
                for j in range(3):
                    fields[f"tensor_signature.{j}"] = scale
            elif key in CYCLE_FIELDS and schema == "cycle":
                fields[key] = scale
            else:
                raise ConfigError(f"precision: {key!r} is not a float field of a {schema} chronicle "
                                  f"(fields: {', '.join(_KEYS[schema])}, {dyn}.NAME)")
        per_field = tuple(fields.get(f) for f in CYCLE_FIELDS) if schema == "cycle" else ()
        return cls(schema, per_field, default, tuple(sorted(named.items())))

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], schema: str, legacy_scale: float | None) -> "Precision":
        """The precision a file was created with: its header's ``precision``
        (format 2), or the one scale of a format-1 file."""
        if legacy_scale is not None:
            return cls.parse(legacy_scale, schema)
        stored = meta.get("precision")
        return cls.parse(stored if stored is not None else None, schema)

    def as_metadata(self) -> dict[str, Spec]:
        """The canonical mapping kept in the header (``parse`` reads it back)."""
        out: dict[str, Spec] = {}
        for name, scale in zip(CYCLE_FIELDS, self.fields):
            out[name] = EXACT if scale is None else scale
        out[_DYNAMIC[self.schema]] = EXACT if self.dynamic is None else self.dynamic
        for name, scale in self.named:
            out[f"{_DYNAMIC[self.schema]}.{name}"] = EXACT if scale is None else scale
        return out

    def field(self, name: str) -> float | None:
        """The scale of a fixed field (None: exact)."""
        return self.fields[CYCLE_FIELDS.index(name)]

    def of(self, name: str) -> float | None:
        """The scale of a metric / value NAME (None: exact)."""
        for n, scale in self.named:
            if n == name:
                return scale
        return self.dynamic

    def named_scales(self) -> dict[str, float]:
        """Per-name scales (0.0 = exact), for the compiled stager."""
        return {n: (0.0 if s is None else s) for n, s in self.named}


def check_value(v: float, scale: float | None, f32: bool, where: str) -> None:
    """Raise ValidationError if ``v`` would not be stored as itself (see the
    module docstring).  ``f32``: the field reads back as float32."""
    if not math.isfinite(v):
        return
    if scale is None:
        if f32:
            with np.errstate(over="ignore"):
                f = float(np.float32(v))
            if math.isinf(f):
                raise ValidationError(f"{where} = {v!r} is too large for float32 (largest {F32_MAX:.6g})")
            if f == 0.0 and v != 0.0:
                raise ValidationError(f"{where} = {v!r} is too small for float32: it would be stored as 0 "
                                      f"(log it as a metric, which is float64, or scale the value)")
        return
    a = abs(v) / scale
    if a >= FIXED_LIMIT or (f32 and abs(v) > F32_MAX):
        raise ValidationError(f"{where} = {v!r} is too large for fixed point at scale {scale!r}")


def check_array(values: npt.NDArray[Any], scale: float | None, f32: bool, where: str) -> None:
    """:func:`check_value` over an array, naming the first bad element."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(v)
        a = np.abs(v)
        if scale is None:
            if not f32:
                return
            v32 = v.astype(np.float32)
            bad = finite & (np.isinf(v32) | ((v != 0) & (v32 == 0)))
        else:
            q = a / scale
            bad = finite & ((q >= FIXED_LIMIT) | ((a > F32_MAX) if f32 else False))
    if bad.any():
        i = int(np.argmax(bad))
        check_value(float(v[i]), scale, f32, f"{where}: element {i}")
