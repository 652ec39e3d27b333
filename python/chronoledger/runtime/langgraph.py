"""A LangGraph checkpointer on the runtime memory database.

``ChronoledgerSaver`` implements LangGraph's checkpoint saver interface
(``BaseCheckpointSaver``: put, put_writes, get_tuple, list, delete_thread,
and delete_for_runs, copy_thread and prune; each also async) on the same
SQLite file as a :class:`~chronoledger.runtime.RuntimeMemoryStore`, so a
graph's checkpoints live beside the agent's sessions, workflows and
proposals, and each LangGraph thread is a session there
(``runtime sessions`` lists them).

Unlike LangGraph's own SQLite saver, several processes may drive graphs on
one file at once: every write is one ``BEGIN IMMEDIATE`` transaction with the
store's busy timeout (60 s by default), so they queue instead of failing with
"database is locked".  docs/runtime.md, "LangGraph".

Needs the ``langgraph`` extra: ``pip install 'chronoledger[langgraph]'``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from chronoledger.errors import CorruptDataError, MissingDependencyError, ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.store import RuntimeMemoryStore

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        SerializerProtocol,
        get_checkpoint_id,
        get_checkpoint_metadata,
        writes_sort_key,
    )
except ImportError as exc:                    # the optional extra
    raise MissingDependencyError(f"chronoledger.runtime.langgraph needs langgraph, which is not installed "
                                 f"({exc.name}): pip install 'chronoledger[langgraph]'") from None

__all__ = ["ChronoledgerSaver"]

_COLUMNS = ("thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint_type, checkpoint, "
            "metadata_type, metadata")


class ChronoledgerSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints in the runtime database at ``path`` (created or
    migrated as :class:`RuntimeMemoryStore` does), or in an open ``store``.

    ::

        from chronoledger.runtime.langgraph import ChronoledgerSaver

        with ChronoledgerSaver("runtime.sqlite") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "t1"}})

    ``serde``: LangGraph's serializer (its JsonPlusSerializer by default).
    The async methods run the same code on a worker thread, so an event
    loop is never blocked by SQLite.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, store: RuntimeMemoryStore | None = None,
                 serde: SerializerProtocol | None = None, actor: str = "langgraph"):
        super().__init__(serde=serde)
        if (path is None) == (store is None):
            raise ValidationError("ChronoledgerSaver: give a database path or an open store (one of them)")
        self._own = store is None
        self.store = store if store is not None else RuntimeMemoryStore(path)  # type: ignore[arg-type]
        if self.store.readonly:
            raise ValidationError(f"{self.store.path}: a checkpointer writes; the store was opened read-only")
        self.actor = v.check_text(actor, "actor")

    # --- lifetime -------------------------------------------------------------
    def close(self) -> None:
        """Close the store if this saver opened it."""
        if self._own:
            self.store.close()

    def __enter__(self) -> "ChronoledgerSaver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "ChronoledgerSaver":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # --- the plumbing -----------------------------------------------------------
    def _rows(self, sql: str, params: Any = ()) -> list[tuple]:
        st = self.store
        with st._locked():
            return [tuple(r) for r in st._conn.execute(sql, params)]

    def _session_for(self, thread_id: str) -> None:
        """The session a thread is (made with its first checkpoint); call in a write."""
        conn = self.store._conn
        if conn.execute("SELECT 1 FROM _langgraph_threads WHERE thread_id = ?", (thread_id,)).fetchall():
            return
        sid = v.new_id()
        conn.execute("INSERT INTO sessions (id, actor, channel, started_at, status, metadata_json) VALUES "
                     "(?, ?, 'sdk', ?, 'active', ?)",
                     (sid, self.actor, self.store._stamp(), v.check_json_object({"langgraph_thread_id": thread_id},
                                                                                "metadata")))
        conn.execute("INSERT INTO _langgraph_threads (thread_id, session_id) VALUES (?, ?)", (thread_id, sid))

    def session_id(self, thread_id: str) -> str | None:
        """The id of the session that is LangGraph thread ``thread_id`` (None before its first checkpoint)."""
        rows = self._rows("SELECT session_id FROM _langgraph_threads WHERE thread_id = ?", (str(thread_id),))
        return rows[0][0] if rows else None

    def _load(self, kind: Any, blob: Any, what: str) -> Any:
        """A stored value, through the serializer; one it cannot read is named."""
        try:
            return self.serde.loads_typed((str(kind), b"" if blob is None else bytes(blob)))
        except Exception as exc:   # noqa: BLE001 -- whatever the serializer raises on bytes it did not write
            raise CorruptDataError(f"{self.store.path}: {what} cannot be read ({type(exc).__name__}: {exc})") from None

    def _tuple(self, row: tuple, config: RunnableConfig | None = None) -> CheckpointTuple:
        thread_id, ns, cid, parent, ctype, cblob, mtype, mblob = row
        where = f"thread {thread_id!r} checkpoint {cid}"
        checkpoint: Checkpoint = self._load(ctype, cblob, f"the checkpoint of {where}")
        versions = checkpoint.get("channel_versions", {})
        values: dict[str, Any] = {}
        writes: list[tuple] = []
        if versions:
            marks = ", ".join("(?, ?)" for _ in versions)
            args: list[Any] = [thread_id, ns]
            for ch, ver in versions.items():
                args += [ch, str(ver)]
            blobs = self._rows(f"SELECT b.channel, b.type, b.blob FROM _langgraph_blobs b JOIN (VALUES {marks}) AS w "
                               f"ON b.channel = w.column1 AND b.version = w.column2 "
                               f"WHERE b.thread_id = ? AND b.checkpoint_ns = ?", args[2:] + args[:2])
            values = {ch: self._load(t, b, f"channel {ch!r} of {where}") for ch, t, b in blobs if t != "empty"}
        writes = self._rows("SELECT task_id, idx, channel, type, blob, task_path FROM _langgraph_writes "
                            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?", (thread_id, ns, cid))
        writes.sort(key=lambda w: writes_sort_key(w[5], w[0], w[1]))
        return CheckpointTuple(
            config=config or {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self._load(mtype, mblob, f"the metadata of {where}"),
            parent_config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                            "checkpoint_id": parent}} if parent else None,
            pending_writes=[(task, ch, self._load(t, b, f"a write of task {task} to {ch!r} at {where}"))
                            for task, _, ch, t, b, _ in writes])

    # --- reading ----------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``), or the
        thread's latest in the namespace; None if there is none."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        cid = get_checkpoint_id(config)
        if cid:
            rows = self._rows(f"SELECT {_COLUMNS} FROM _langgraph_checkpoints WHERE thread_id = ? AND "
                              f"checkpoint_ns = ? AND checkpoint_id = ?", (thread_id, ns, cid))
            return self._tuple(rows[0], config) if rows else None
        rows = self._rows(f"SELECT {_COLUMNS} FROM _langgraph_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                          f"ORDER BY checkpoint_id DESC LIMIT 1", (thread_id, ns))
        return self._tuple(rows[0]) if rows else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (and namespace and
        checkpoint id, when it names them; every thread without a config),
        older than ``before``, whose metadata has every key and value of
        ``filter``, at most ``limit``."""
        where: list[str] = []
        args: list[Any] = []
        if config is not None:
            conf = config["configurable"]
            where.append("thread_id = ?")
            args.append(str(conf["thread_id"]))
            if conf.get("checkpoint_ns") is not None:
                where.append("checkpoint_ns = ?")
                args.append(conf["checkpoint_ns"])
            if get_checkpoint_id(config):
                where.append("checkpoint_id = ?")
                args.append(get_checkpoint_id(config))
        if before is not None and get_checkpoint_id(before):
            where.append("checkpoint_id < ?")
            args.append(get_checkpoint_id(before))
        base = f"SELECT {_COLUMNS} FROM _langgraph_checkpoints"
        order = " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT 256"
        if limit is not None and limit <= 0:
            return
        left = limit
        # a page at a time, the lock not held between them: a caller may write while it iterates; the key is the
        # whole primary key (copy_thread makes the same checkpoint id in two threads)
        after: tuple[str, str, str] | None = None
        while True:
            conds = list(where) + (["(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"] if after else [])
            rows = self._rows(base + (" WHERE " + " AND ".join(conds) if conds else "") + order,
                              args + (list(after) if after else []))
            for row in rows:
                tup = self._tuple(row)
                if filter and not all(tup.metadata.get(k) == want for k, want in filter.items()):
                    continue
                yield tup
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return
            if len(rows) < 256:
                return
            after = (rows[-1][2], rows[-1][0], rows[-1][1])

    # --- writing ----------------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint, with the values of the channels ``new_versions``
        names (each version once), in one transaction."""
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        parent = conf.get("checkpoint_id")
        c: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = c.pop("channel_values", {})
        blobs = [(thread_id, ns, ch, str(ver), *(self.serde.dumps_typed(values[ch]) if ch in values
                                                 else ("empty", None)))
                 for ch, ver in new_versions.items()]
        meta = get_checkpoint_metadata(config, metadata)
        ctype, cblob = self.serde.dumps_typed(c)
        mtype, mblob = self.serde.dumps_typed(meta)
        run_id = meta.get("run_id")
        st = self.store
        with st._locked(), st._write("langgraph put"):
            self._session_for(thread_id)
            conn = st._conn
            if blobs:
                conn.executemany("INSERT OR REPLACE INTO _langgraph_blobs (thread_id, checkpoint_ns, channel, version, "
                                 "type, blob) VALUES (?, ?, ?, ?, ?, ?)", blobs)
            conn.execute("INSERT OR REPLACE INTO _langgraph_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                         "parent_checkpoint_id, run_id, checkpoint_type, checkpoint, metadata_type, metadata, "
                         "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (thread_id, ns, checkpoint["id"], parent, None if run_id is None else str(run_id), ctype,
                          cblob, mtype, mblob, st._stamp()))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        """Store a task's writes for a checkpoint: a write already stored is
        kept (a retried task writes the same), except the special channels
        (errors, interrupts...), whose latest write replaces the last."""
        conf = config["configurable"]
        thread_id, ns, cid = str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"]
        keep: list[tuple] = []
        replace: list[tuple] = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            row = (thread_id, ns, cid, task_id, idx, channel, *self.serde.dumps_typed(value), task_path)
            (replace if idx < 0 else keep).append(row)
        st = self.store
        cols = "(thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)"
        with st._locked(), st._write("langgraph put_writes"):
            if keep:
                st._conn.executemany(f"INSERT OR IGNORE INTO _langgraph_writes {cols} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     keep)
            if replace:
                st._conn.executemany(f"INSERT OR REPLACE INTO _langgraph_writes {cols} VALUES "
                                     f"(?, ?, ?, ?, ?, ?, ?, ?, ?)", replace)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints, writes and channel values, and the session it was."""
        tid = str(thread_id)
        st = self.store
        with st._locked(), st._write("langgraph delete_thread"):
            conn = st._conn
            for table in ("_langgraph_checkpoints", "_langgraph_blobs", "_langgraph_writes"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (tid,))
            for (sid,) in conn.execute("SELECT session_id FROM _langgraph_threads WHERE thread_id = ?",
                                       (tid,)).fetchall():
                conn.execute("DELETE FROM _langgraph_threads WHERE thread_id = ?", (tid,))
                conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the given runs made (metadata ``run_id``), with their writes."""
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        st = self.store
        with st._locked(), st._write("langgraph delete_for_runs"):
            conn = st._conn
            conn.execute(f"DELETE FROM _langgraph_writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
                         f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM _langgraph_checkpoints "
                         f"WHERE run_id IN ({marks}))", ids)
            conn.execute(f"DELETE FROM _langgraph_checkpoints WHERE run_id IN ({marks})", ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's every checkpoint, write and channel value to another thread (a new session)."""
        src, dst = str(source_thread_id), str(target_thread_id)
        st = self.store
        with st._locked(), st._write("langgraph copy_thread"):
            conn = st._conn
            if not conn.execute("SELECT 1 FROM _langgraph_checkpoints WHERE thread_id = ? LIMIT 1", (src,)).fetchall():
                return
            self._session_for(dst)
            conn.execute("INSERT OR REPLACE INTO _langgraph_checkpoints SELECT ?, checkpoint_ns, checkpoint_id, "
                         "parent_checkpoint_id, run_id, checkpoint_type, checkpoint, metadata_type, metadata, "
                         "created_at FROM _langgraph_checkpoints WHERE thread_id = ?", (dst, src))
            conn.execute("INSERT OR REPLACE INTO _langgraph_blobs SELECT ?, checkpoint_ns, channel, version, type, "
                         "blob FROM _langgraph_blobs WHERE thread_id = ?", (dst, src))
            conn.execute("INSERT OR REPLACE INTO _langgraph_writes SELECT ?, checkpoint_ns, checkpoint_id, task_id, "
                         "idx, channel, type, blob, task_path FROM _langgraph_writes WHERE thread_id = ?", (dst, src))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's latest checkpoint of each
        thread (with its writes and the channel values it refers to) and
        delete the rest; ``delete``: delete them all.

        A graph that uses LangGraph's (beta) DeltaChannel rebuilds such a
        channel from the writes of earlier checkpoints: do not keep_latest
        its threads (LangGraph's own note on prune)."""
        if strategy not in ("keep_latest", "delete"):
            raise ValidationError(f"strategy: {strategy!r} is not one of keep_latest, delete")
        tids = [str(t) for t in thread_ids]
        st = self.store
        for tid in tids:
            with st._locked(), st._write("langgraph prune"):
                conn = st._conn
                if strategy == "delete":
                    for table in ("_langgraph_checkpoints", "_langgraph_blobs", "_langgraph_writes"):
                        conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (tid,))
                    continue
                latest = "(SELECT max(k.checkpoint_id) FROM _langgraph_checkpoints k WHERE k.thread_id = ? AND " \
                         "k.checkpoint_ns = {t}.checkpoint_ns)"
                conn.execute(f"DELETE FROM _langgraph_writes WHERE thread_id = ? AND checkpoint_id <> "
                             f"{latest.format(t='_langgraph_writes')}", (tid, tid))
                kept = conn.execute(f"SELECT checkpoint_ns, checkpoint_type, checkpoint FROM _langgraph_checkpoints "
                                    f"WHERE thread_id = ? AND checkpoint_id = "
                                    f"{latest.format(t='_langgraph_checkpoints')}", (tid, tid)).fetchall()
                conn.execute(f"DELETE FROM _langgraph_checkpoints WHERE thread_id = ? AND checkpoint_id <> "
                             f"{latest.format(t='_langgraph_checkpoints')}", (tid, tid))
                # the channel values the kept checkpoints refer to stay; the rest go
                keep: set[tuple[Any, Any, str]] = set()
                for ns, ctype, cblob in kept:      # (text, bytes) as put stored them
                    for ch, ver in self._load(ctype, cblob, f"a checkpoint of thread {tid!r}").get(
                            "channel_versions", {}).items():
                        keep.add((ns, ch, str(ver)))
                gone = [(tid, ns, ch, ver) for ns, ch, ver in conn.execute(
                    "SELECT checkpoint_ns, channel, version FROM _langgraph_blobs WHERE thread_id = ?", (tid,))
                    if (ns, ch, ver) not in keep]
                conn.executemany("DELETE FROM _langgraph_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND "
                                 "channel = ? AND version = ?", gone)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The version after ``current``: a zero-padded counter and a random
        fraction (LangGraph's own form), so that versions sort as text and two
        branches of one thread never make the same one."""
        if current is None:
            n = 0
        elif isinstance(current, int):
            n = current
        else:
            n = int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    # --- async: the same, on a worker thread -----------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for tup in found:
            yield tup

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
