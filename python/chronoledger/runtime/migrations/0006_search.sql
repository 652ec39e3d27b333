-- 0006: full-text search over conversation turns (SQLite FTS5; docs/runtime.md "Search").
-- Appends are indexed when a search runs (or by `runtime index`), never inside the append:
-- batches of turns stay as fast as without it.  _turns_fts_state says how far the index
-- goes: the rowid of the last turn indexed and that turn's id, which tells a search that
-- VACUUM renumbered the rows (then the index is rebuilt).  A turn deleted or edited after
-- it was indexed leaves the index at once, by the triggers below.

CREATE VIRTUAL TABLE IF NOT EXISTS _turns_fts USING fts5(
  content, turn_id UNINDEXED, session_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');

CREATE TABLE IF NOT EXISTS _turns_fts_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  indexed_rowid INTEGER NOT NULL,
  indexed_id TEXT
);
INSERT OR IGNORE INTO _turns_fts_state (id, indexed_rowid, indexed_id) VALUES (1, 0, NULL);

CREATE TRIGGER IF NOT EXISTS _turns_fts_on_delete AFTER DELETE ON conversation_turns
WHEN OLD.rowid <= (SELECT indexed_rowid FROM _turns_fts_state WHERE id = 1)
BEGIN DELETE FROM _turns_fts WHERE rowid = OLD.rowid; END;

CREATE TRIGGER IF NOT EXISTS _turns_fts_on_update AFTER UPDATE OF content, session_id, id ON conversation_turns
WHEN OLD.rowid <= (SELECT indexed_rowid FROM _turns_fts_state WHERE id = 1)
BEGIN
  DELETE FROM _turns_fts WHERE rowid = OLD.rowid;
  INSERT INTO _turns_fts (rowid, content, turn_id, session_id) VALUES (NEW.rowid, NEW.content, NEW.id, NEW.session_id);
END;
