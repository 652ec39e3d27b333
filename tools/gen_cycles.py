"""Command-line front end of the standard "cycles" workload generator.

The generator itself is :mod:`chronoledger.workload` (so the demo, the tests
and the benchmarks share one definition); this script prints a JSON summary
and can write the raw 38-byte packed records.

    python tools/gen_cycles.py [--n N] [--variant seq|ms] [--seed S] [--out summary.json] [--raw rows.bin]
"""

from __future__ import annotations

import argparse
import json
import sys

from chronoledger.workload import DEFAULT_N, DEFAULT_SEED, VARIANTS, generate, pack_records, summarize


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the standard chronoledger cycles workload and summarise it.")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help="number of records (default %(default)s)")
    ap.add_argument("--variant", choices=VARIANTS, default="seq", help="timestamp variant (default %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed (default %(default)s)")
    ap.add_argument("--out", help="write the JSON summary here instead of stdout")
    ap.add_argument("--raw", help="also write the raw 38-byte packed records to this file")
    args = ap.parse_args(argv)

    cols = generate(args.n, args.variant, args.seed)
    summary = summarize(cols, args.variant, args.seed)
    text = json.dumps(summary, indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.raw:
        with open(args.raw, "wb") as f:
            f.write(pack_records(cols).tobytes())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
