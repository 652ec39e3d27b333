"""Type stubs of the compiled chronicle staging (src/_chronicle.pyx)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import Self, disjoint_base

#: The longest phase name, in UTF-8 bytes.
DEF_PHASE_MAX: int

#: One sealed window: its columns, its labels (phase names), its metrics
#: (float64 values, present-masks) and the token that gives its buffers back.
_Window = tuple[dict[str, npt.NDArray[Any]], list[str],
                dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]], object | None]

@disjoint_base
class CycleStager:
    def __new__(cls, window: int, sink: Callable[[], object], floor: int | None = None, path: str = "",
                fields: tuple[float, ...] = ..., metric_default: float = 0.0,
                metric_named: dict[str, float] | None = None, finite_only: bool = False) -> Self: ...
    def append(self, timestamp: int, phase: str, loss_value: float, coherence: float,
               tensor_signature: tuple[float, float, float] | None = None, action_code: int | None = None,
               seed_state: int = 0, metrics: dict[str, float] | None = None) -> bool: ...
    def extend(self, cols: dict[str, Any], names: list[str],
               metrics: dict[str, tuple[Any, Any]] | None = None) -> None: ...
    def take_ready(self) -> list[_Window]: ...
    def recycle(self, token: object | None) -> None: ...
    def flush(self) -> None: ...
    def set_floor(self, floor: int | None) -> None: ...
    def close(self) -> None: ...
    @property
    def pending(self) -> int: ...
    @property
    def pending_max(self) -> int | None: ...
    @property
    def last_flushed(self) -> int | None: ...
