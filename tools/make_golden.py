"""Write the golden chronicle files in tests/data/ (run once per format version).

    python tools/make_golden.py

The files are committed; tests/test_chronicle_golden.py checks that every
later version reads them.  Do not regenerate them for an existing format
version: add new ones beside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _chronicle_util import write_cycles  # noqa: E402

from chronoledger.chronicle import Chronicle, EventRecord  # noqa: E402


def main() -> None:
    data = ROOT / "tests" / "data"
    data.mkdir(parents=True, exist_ok=True)
    cycles = data / "golden_v1_cycles.cmeta"
    write_cycles(cycles, 200, block_records=64, mode="w", config={"lr": 0.01, "layers": [4, 2]},
                 initial_seed=2026, metadata={"purpose": "golden file, format v1"})
    write_cycles(cycles, 100, block_records=64, mode="a", start=200)      # a second session
    events = data / "golden_v1_events.cmeta"
    with Chronicle.open(events, "w", schema="event", block_records=4) as ch:
        for i in range(10):
            ch.append(EventRecord(1_767_225_600_000 + 1000 * i, ["start", "turn", "tool"][i % 3],
                                  {"i": i, "text": f"event {i} ✓", "tags": ["a", "b"][: i % 3]},
                                  {"tokens": float(i * 3)} if i % 2 else {}))
    print(f"wrote {cycles} and {events}")


if __name__ == "__main__":
    main()
