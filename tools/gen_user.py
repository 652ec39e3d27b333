"""Write a Chronos user folder of any size (front end of
chronoledger.sequence.sample), in the formats Chronos itself writes: items
of every type, and for as many days as asked schedules
(schedules/schedule_DATE.yml), completions, the status history
(logs/status_DATE.yml), the points ledger (Rewards/points.yml), timer
sessions, reviews; with Chronos's scripts, settings and timer state beside them.

    python tools/gen_user.py OUT [--items 300] [--days 120] [--seed 7] [--start 2025-01-01]

examples/User was written with: python tools/gen_user.py examples --items 300 --days 120
The benchmark folder: python tools/gen_user.py /tmp/big --items 20000 --days 730
"""

from __future__ import annotations

import argparse
from datetime import date

from chronoledger.sequence.sample import write_user_folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder to write User/ into")
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    a = ap.parse_args(argv)
    if a.items < 20 or a.days < 1:
        ap.error("--items must be at least 20 and --days at least 1")
    user = write_user_folder(a.out, a.items, a.days, a.seed, a.start)
    print(f"wrote {user}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
