"""Type stubs of the direct YAML reader (src/_yamlread.pyx)."""

from collections.abc import Callable
from typing import Any

STR: str
MAX_DEPTH_LIMIT: int

class NotPlain(Exception): ...
class TooDeep(Exception):
    @property
    def line(self) -> int: ...

def bind(path: str) -> str | None: ...
def read(
    raw: bytes, case_depth: int, max_depth: int, tags: dict[str, str],
    resolve: Callable[[str], str], scalar: Callable[..., Any], keys: dict[str, str],
) -> Any: ...
