"""Writes the runtime store's generated migrations from
chronoledger.runtime.enforcement (which reads runtime/vocab.py and
runtime/v1_spec.sql); tests check the shipped files equal this output.

    python tools/gen_runtime_enforcement.py            # rewrite the files
    python tools/gen_runtime_enforcement.py --check    # exit 1 if they differ
"""

from __future__ import annotations

import sys
from pathlib import Path

from chronoledger.runtime import enforcement

MIGRATIONS = Path(__file__).resolve().parents[1] / "python" / "chronoledger" / "runtime" / "migrations"
FILES = {"0001_v1.sql": enforcement.migration_0001, "0002_audit.sql": enforcement.migration_0002}


def main(argv: list[str]) -> int:
    stale = []
    for name, make in FILES.items():
        path = MIGRATIONS / name
        text = make()
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python tools/gen_runtime_enforcement.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
