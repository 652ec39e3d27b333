"""YAML-declared tables with validation, queries and governance (docs/tables.md).

>>> from chronoledger.tables import TableRegistry
>>> reg = TableRegistry("grace.db", schema_dirs=["my_schemas/"])
>>> report = reg.load_all_schemas()
>>> reg.insert_row("memory_self_healing_playbooks", {"playbook_name": "fix_db", ...})
"""

from chronoledger.tables.registry import CATALOGUE, GOVERNANCE_TABLE, LoadReport, TableRegistry
from chronoledger.tables.schema import (Change, FieldSpec, IndexSpec, Relationship, SchemaProblem, TableSchema,
                                        parse_schema, read_schema_file)

__all__ = ["TableRegistry", "LoadReport", "TableSchema", "FieldSpec", "IndexSpec", "Relationship", "SchemaProblem",
           "Change", "parse_schema", "read_schema_file", "CATALOGUE", "GOVERNANCE_TABLE"]
