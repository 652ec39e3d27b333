"""Where the reader's names used to live, before the reader was split into
:mod:`~chronoledger.sequence.reader` (the folder walked into records),
:mod:`~chronoledger.sequence.yamlfile` (one YAML file read),
:mod:`~chronoledger.sequence.records` (what they give) and
:mod:`~chronoledger.sequence.values` (values as people write them).

Kept so that ``from chronoledger.sequence.layout import ...`` still works;
new code imports from those modules.  Nothing in the package imports this one.
"""

from __future__ import annotations

from chronoledger.sequence.reader import (SPECIAL, Reader, child, find_user_folder, read_user_folder, shown_name,
                                          singular, utf8_name, valid_date)
from chronoledger.sequence.records import Item, Problem, UserTree
from chronoledger.sequence.values import minutes_of, parse_duration
from chronoledger.sequence.yamlfile import MAX_DEPTH, MAX_VALUES, CaseLoader, Loader, load_yaml, too_deep_line

__all__ = [
    "MAX_DEPTH", "MAX_VALUES", "SPECIAL", "CaseLoader", "Item", "Loader", "Problem", "Reader", "UserTree", "child",
    "find_user_folder", "load_yaml", "minutes_of", "parse_duration", "read_user_folder", "shown_name", "singular",
    "too_deep_line", "utf8_name", "valid_date",
]
