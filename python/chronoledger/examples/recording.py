"""Record the example learner into a chronicle (used by the demo and by
examples/record_learner.py)."""

from __future__ import annotations

from pathlib import Path

from chronoledger.chronicle import Chronicle
from chronoledger.examples import learner

STEP = "chronoledger.examples.learner:make_step"


def record_learner(path: str | Path, n_cycles: int = 10_000, config: dict | None = None,
                   initial_seed: int = 2026, mode: str = "w") -> int:
    """Run the learner for ``n_cycles`` cycles and record every cycle.

    The header keeps the configuration and the initial seed, so
    ``chronoledger chronicle replay PATH --step chronoledger.examples.learner:make_step``
    can re-run it.  Returns the number of records written.
    """
    cfg = dict(learner.DEFAULT_CONFIG, **(config or {}))
    with Chronicle.open(path, mode, config=cfg, initial_seed=initial_seed,
                        metadata={"system": "chronoledger.examples.learner", "step": STEP}) as ch:
        for timestamp, phase, seed_state, out in learner.run(cfg, initial_seed, n_cycles):
            ch.append(timestamp=timestamp, phase=phase, seed_state=seed_state, **out)
        return len(ch)
