"""What a chronicle's timestamps count: cycle indices or epoch milliseconds.

A chronicle's u64 timestamp is whatever the recorder chose: a cycle index
(0, 1, 2, ...) or an epoch time.  The pictures (:mod:`.plot`) and the
TensorBoard export (:mod:`.tensorboard`) need to know which, to draw dates
and to give TensorBoard wall times; nothing in the file says, so this module
guesses from the values, the one rule both use.
"""

from __future__ import annotations

#: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in epoch milliseconds
EPOCH_MS_MIN = 946_684_800_000
EPOCH_MS_MAX = 4_102_444_800_000


def looks_like_epoch_ms(first: int | None, last: int | None) -> bool:
    """Whether timestamps from ``first`` to ``last`` read as epoch
    milliseconds: both between 2000-01-01 and 2100-01-01.

    A cycle index would need to pass 946 billion cycles to be taken for a
    date, and epoch seconds or microseconds fall outside the window
    (seconds are about 1e9, microseconds about 1e15), so the guess is safe
    in practice.  An empty chronicle (None) is not epoch ms.
    """
    if first is None or last is None:
        return False
    return EPOCH_MS_MIN <= int(first) <= int(last) < EPOCH_MS_MAX
