"""Shared builders for the chronicle tests."""

import numpy as np

from chronoledger.chronicle import Chronicle

PHASES = ("train", "validate", "dream")


def cycle_fields(i: int) -> dict:
    """A deterministic, varied cycle record for timestamp i."""
    metrics = {"lr": 0.01 / (1 + i // 100)}
    if i % 3 == 0:
        metrics["grad_norm"] = 1.0 + (i % 17) * 0.125
    return dict(timestamp=i, phase=PHASES[(i // 7) % 3], loss_value=2.0 / (i + 1) + 0.001 * (i % 5),
                coherence=0.5 + 0.25 * np.sin(i / 50.0), tensor_signature=(0.1 * i, -0.2, 1.0 / (i + 2)),
                action_code=(i % 16) if i % 11 == 0 else None, seed_state=(i * 0x9E3779B97F4A7C15) % 2**64,
                metrics=metrics)


def write_cycles(path, n: int, block_records: int = 100, mode: str = "w", start: int = 0, **kw) -> None:
    with Chronicle.open(path, mode, block_records=block_records, **kw) as ch:
        for i in range(start, start + n):
            ch.append(**cycle_fields(i))
