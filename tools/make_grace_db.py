"""Make tests/data/grace_registry.db with Grace's own registry, so that the
adoption tests read a database exactly as Grace's users have them.

    python -m venv /tmp/gracevenv && /tmp/gracevenv/bin/pip install sqlmodel pyyaml
    git clone https://github.com/aaron031291/grace_2 /tmp/grace_2
    /tmp/gracevenv/bin/python tools/make_grace_db.py /tmp/grace_2 tests/data/grace_registry.db

It runs Grace's ``backend/memory_tables/registry.py`` (SchemaRegistry:
initialize_database, insert_row) on the Grace-form schema files of
tests/data/grace_folder, and inserts rows the way Grace's code does: Python
uuids, naive datetimes, dicts and lists for JSON, booleans.  Made with
grace_2 at 6e07b3a and SQLModel 0.0.x / SQLAlchemy 2.0.

``--check DB [--schemas DIR]``: read every row of DB back through Grace's
registry (what chronoledger wrote after adopting it must be readable by
Grace's code).
"""

import argparse
import importlib.util
import sys
import uuid
from datetime import datetime
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "data" / "grace_folder"


def grace_registry(checkout: Path, folder: Path = FOLDER):
    spec = importlib.util.spec_from_file_location("grace_registry",
                                                  checkout / "backend" / "memory_tables" / "registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reg = module.SchemaRegistry(schema_dir=folder)
    reg.load_all_schemas()
    return reg


def make(checkout: Path, out: Path) -> None:
    if out.exists():
        sys.exit(f"{out} exists; remove it first")
    reg = grace_registry(checkout)
    reg.initialize_database(f"sqlite:///{out}")
    incident = uuid.UUID("0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35")
    rows = [
        ("memory_documents", {"file_path": "docs/a.md", "title": "A", "authors": ["ada", "grace"],
                              "key": None, "token_count": 120, "trust_score": 0.75, "is_public": True,
                              "last_synced_at": datetime(2025, 3, 4, 5, 6, 7, 891011),
                              "governance_stamp": {"approver": "ops", "policies": ["p1"]}}),
        ("memory_documents", {"file_path": "docs/b.md", "title": "B", "authors": [], "source_type": "book",
                              "summary": "two", "token_count": 7, "trust_score": 0.5, "is_public": False,
                              "governance_stamp": 3}),
        ("memory_incidents", {"id": incident, "title": "disk full", "severity": "high", "tags": {"host": "db1"},
                              "opened_at": datetime(2025, 1, 2, 3, 4, 5)}),
        ("memory_execution_logs", {"action": "clean tmp", "incident_id": incident, "duration_ms": 1500,
                                   "succeeded": True}),
        ("memory_governance_decisions", {"decision_id": "d-1", "decision_type": "approval", "subject": "x", "context": "by hand", "reasoning": "seeded",
                                         "policy_references": ["p1"], "risk_level": "low", "decision_maker": "ops",
                                         "decision_outcome": "approved", "created_at": datetime(2025, 1, 1),
                                         "audit_stamp": {"by": "ops"}, "requires_review": False}),
    ]
    for table, data in rows:
        data = {k: v for k, v in data.items() if k != "key"}
        if reg.insert_row(table, data) is None:
            sys.exit(f"Grace's registry refused a row of {table}: {data}")
    print(f"{out}: made by Grace's registry, {len(rows)} rows")


def check(checkout: Path, path: Path, folder: Path = FOLDER) -> None:
    reg = grace_registry(checkout, folder)
    reg.initialize_database(f"sqlite:///{path}")
    for table in sorted(reg.schemas):
        rows = reg.query_rows(table, limit=1000)
        print(f"{table}: {len(rows)} rows read by Grace's registry")
        for r in rows:
            print("   ", {k: v for k, v in r.model_dump().items()})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("grace_checkout", type=Path)
    ap.add_argument("db", type=Path)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--schemas", type=Path, default=FOLDER, help="the schema folder --check reads with (default: "
                                                                    "tests/data/grace_folder)")
    args = ap.parse_args()
    if args.check:
        check(args.grace_checkout, args.db, args.schemas)
    else:
        make(args.grace_checkout, args.db)
