"""Write docs/cli.md from the commands themselves (``chronoledger.cli.docs.render``).

    python tools/gen_cli_docs.py           # rewrite docs/cli.md
    python tools/gen_cli_docs.py --check   # exit 1 if docs/cli.md is not current

Run it after changing a command, an option, a help text or the exit codes;
tests/test_cli_docs.py fails until the committed file matches.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chronoledger.cli.docs import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is not current: run python tools/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(DOC)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
