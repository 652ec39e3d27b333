"""The README's Python example must run as written."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    if not README.exists():
        pytest.skip("README.md is not beside the tests (installed without the source tree)")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2, "README should show the chronicle and the core from Python"
    monkeypatch.chdir(tmp_path)                 # the examples write files
    namespaces = []
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    chronicle_ns = next(ns for ns in namespaces if "window" in ns)
    assert [r.timestamp for r in chronicle_ns["window"]] == list(range(100, 110))
    assert len(chronicle_ns["loss"]) == 1000
    run_ns = next(ns for ns in namespaces if "history" in ns)
    assert [(e["op"], e["to"], e["dropped"]) for e in run_ns["history"]] == [("rewind", 49, 50)]
    from chronoledger.chronicle import Chronicle
    with Chronicle.open(tmp_path / "runs" / "exp1.cmeta") as ch:
        cols = ch.to_numpy()
    assert cols["timestamp"].tolist() == list(range(100))          # one record per step, none twice
    assert (~np.isnan(cols["metrics.val_acc"])).sum() == 5          # steps 0..40 of the first attempt
    core_ns = next(ns for ns in namespaces if "seen" in ns)
    assert core_ns["seen"], "the example's sink received nothing"
    assert len(core_ns["data"]) < 200
    rt_ns = next(ns for ns in namespaces if "lineage" in ns)
    assert [t["turn_index"] for t in rt_ns["replay"]["turns"]] == [0, 1]
    assert rt_ns["lineage"]["proposal"]["status"] == "validated" and len(rt_ns["lineage"]["validations"]) == 1
    tables_ns = next(ns for ns in namespaces if "best" in ns)
    assert [r["playbook_name"] for r in tables_ns["best"]] == ["fix_database_connection"]


def test_quick_start_is_what_ci_runs():
    if not README.exists():
        pytest.skip("README.md is not beside the tests")
    text = README.read_text(encoding="utf-8")
    quick = re.search(r"## Quick start\n+```bash\n(.*?)```", text, re.S)
    assert quick, "README has no Quick start block"
    lines = [ln for ln in quick.group(1).splitlines() if ln.strip()]
    assert lines[0] == "pip install . && chronoledger demo"
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    commands = [ln.strip() for ln in ci.splitlines() if not ln.lstrip().startswith("#")]
    assert lines[1] in commands                               # verbatim, in a fresh venv
    assert any("--resolution lowest-direct '.[test]'" in c for c in commands)   # and at the lowest versions
