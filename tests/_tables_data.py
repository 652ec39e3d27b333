"""Schemas and names shared by the tables tests (test_tables.py, test_cli_tables.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLAYBOOKS = "memory_self_healing_playbooks"
LOGS = "memory_execution_logs"
GOV = "memory_governance_decisions"

CATALOGUE = ["memory_documents", "memory_codebases", "memory_datasets", "memory_media", "memory_insights",
             PLAYBOOKS, "memory_coding_work_orders", "memory_sub_agents", "memory_verification_suites", GOV,
             "memory_trigger_mesh", "memory_business_intelligence", "memory_discovery_targets",
             "memory_compliance_reports", "memory_sop_manuals", LOGS, "memory_feedback_tickets", "memory_llm_prompts"]

#: A user schema with every type and every field option.
GOOD = """\
table: my_notes
description: Notes
version: 2
nullable_rule: chronoledger
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: title, type: string, required: true, unique: true}
  - {name: body, type: text}
  - {name: tags, type: json, default: []}
  - {name: mood, type: string, enum: [good, bad], default: good}
  - {name: score, type: integer, min: 0, max: 10, default: 5}
  - {name: ratio, type: float, min: 0, max: 1}
  - {name: done, type: boolean, default: false}
  - {name: due, type: date}
  - {name: seen_at, type: timestamp}
  - {name: created_at, type: datetime, generated: true}
  - {name: updated_at, type: datetime, generated: update}
indexes:
  - {fields: [mood, score], unique: false}
"""


def write_schema(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(textwrap.dedent(text))
    return p
