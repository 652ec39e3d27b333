"""Record a run of the example numpy learner, then verify and replay it.

    python examples/record_learner.py [OUT.cmeta] [--cycles N]

Afterwards, from the command line:

    chronoledger chronicle inspect OUT.cmeta
    chronoledger chronicle replay OUT.cmeta --step chronoledger.examples.learner:make_step
"""

from __future__ import annotations

import argparse

from chronoledger import chronicle
from chronoledger.examples import learner
from chronoledger.examples.recording import record_learner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default="learner.cmeta")
    ap.add_argument("--cycles", type=int, default=10_000)
    args = ap.parse_args()
    n = record_learner(args.out, args.cycles)
    print(f"recorded {n:,} cycles to {args.out}")
    print(chronicle.verify(args.out).text())
    report = chronicle.replay(args.out, learner.make_step)
    print(f"replay: {report.matched:,} of {report.records:,} records match by hash")


if __name__ == "__main__":
    main()
