"""Sequence: a Chronos user folder (YAML, the source of truth) mirrored into SQLite,
the behaviour metastudy agents read, read-only data queries, and the nightly
sync.  See docs/sequence.md."""
