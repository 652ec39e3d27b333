"""What the agents of a world remember, and what they recall when they speak.

The model is the memory stream of Generative Agents (Park et al. 2023):

* **Memories** are made from what was said and done: what the others in a
  conversation actually said (an excerpt of their turns), a private thought,
  being turned away by a full place.  Each has an **importance** from 1
  (mundane) to 10 (poignant), scored here by rules, without a model (see
  :func:`importance`), so a run stays deterministic and a dry run free.
* **Retrieval** scores every memory an agent holds by recency (an
  exponential decay per simulated hour since it was made), importance and
  relevance to what the agent is about to do, and puts the best few into the
  request.  Relevance is, by default, the overlap of hashed keywords (a
  64-bit signature per text; offline, deterministic, exact to compute); with
  ``memory.relevance: embedding``, the cosine of the model's vectors.
* **Reflections** turn the most important recent memories into one
  higher-level memory (an *insight*), at the end of a day, for each agent
  whose memories since its last reflection add up to
  ``memory.reflect_threshold``.

Scale: each agent keeps its ``memory.slots`` best memories within reach (a
fixed-size table per agent, 17 bytes a slot; a new memory takes the place of
the least important, then oldest, one), so retrieval for every speaker of a
tick is a handful of numpy operations over (speakers x slots), and the table
of a million agents with 32 slots takes 544 MB (their texts besides).  Every
memory stays in the database.

Determinism: a memory's slot depends only on the agent's earlier memories,
in the order they were made, never on the clock or on batching, so the
table is rebuilt exactly from the database when a run resumes (memories in
id order), and from the run's log when it is replayed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from chronoledger.errors import ConfigError


__all__ = ["MemorySettings", "MemoryStream", "importance", "signature", "excerpt", "parse_settings"]

_WORD = re.compile(r"[\W_]+")                   # anything but letters and digits, in any script
#: Bytes: ASCII letters and digits kept, the rest of ASCII a space, bytes beyond ASCII kept (bytes.translate).
_ASCII_TABLE = bytes(c if c >= 128 or chr(c).isalnum() else 32 for c in range(256))
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
#: Words that say nothing about what a memory is about (left out of its signature).
_STOP = frozenset(w.encode() for w in """
a about after again all also am an and any are as at be been before being but by can could did do does
doing done for from had has have he her here hers him his how i if in into is it its just me more most my
no not now of on one or our out over said she so some still than that the their them then there these
they this those through to too up us very was we were what when where which while who why will with would
you your told talked say says saying think thinking really today something things thing quite well
""".split())
#: Words that make a memory matter more (a rule of thumb for poignancy).
_SALIENT = frozenset(w.encode() for w in """
love loved hate angry afraid scared worried worry anxious sad cried crying happy excited thrilled
proud ashamed sorry apologise apologize forgive lost lose won win promotion fired quit job baby pregnant
married marry wedding divorce birthday funeral died death sick ill hospital moving move secret
congratulations congrats argue argued fight fought broke broken miss missed trust betrayed
""".split())
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_EXCERPT = 110
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class MemorySettings:
    """The ``memory:`` section of a world config (docs/world.md)."""
    retrieve: int = 3               # memories put into each request (0: none)
    slots: int = 32                 # memories each agent keeps within reach
    recency_decay: float = 0.995    # per simulated hour since a memory was made
    weight_recency: float = 1.0
    weight_importance: float = 1.0
    weight_relevance: float = 1.0
    reflect_threshold: int = 12     # summed importance since the last reflection that makes one
    reflect_memories: int = 5       # memories a reflection draws on
    #: "keywords" (offline, hashed keyword overlap) or "embedding" (the model's embedding endpoint: cosine)
    relevance: str = "keywords"


MEMORY_KEYS = ("retrieve", "slots", "recency_decay", "weights", "reflect_threshold", "reflect_memories", "relevance")
RELEVANCE = ("keywords", "embedding")
#: The most memory the embedding table may take (agents x slots x dimensions x 4 bytes).
MAX_VECTOR_BYTES = 4 << 30


def parse_settings(v: Any, problem: Any) -> MemorySettings:
    """The config's ``memory:`` mapping; ``problem(key, why)`` makes the
    error to raise (the config's collector of problems)."""
    if v is None:
        return MemorySettings()
    if not isinstance(v, dict):
        raise problem("memory", f"must be a mapping, found {type(v).__name__}")
    for k in v:
        if k not in MEMORY_KEYS:
            raise problem(f"memory.{k}", f"unknown key (the keys are {', '.join(MEMORY_KEYS)})")

    def whole(key: str, low: int, high: int, default: int) -> int:
        x = v.get(key, default)
        if isinstance(x, bool) or not isinstance(x, int) or not low <= x <= high:
            raise problem(f"memory.{key}", f"{x!r} must be a whole number from {low} to {high}")
        return x

    def fraction(key: str, x: Any, low: float, high: float) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not low <= x <= high:
            raise problem(key, f"{x!r} must be a number from {low} to {high}")
        return float(x)

    weights = v.get("weights")
    weights = {} if weights is None else weights
    if not isinstance(weights, dict):
        raise problem("memory.weights", f"must be a mapping, found {type(weights).__name__}")
    for k in weights:
        if k not in ("recency", "importance", "relevance"):
            raise problem(f"memory.weights.{k}", "unknown weight (they are recency, importance, relevance)")
    relevance = v.get("relevance", "keywords")
    if relevance not in RELEVANCE:
        raise problem("memory.relevance", f"{relevance!r} is not one of {', '.join(RELEVANCE)}")
    out = MemorySettings(
        relevance=relevance,
        retrieve=whole("retrieve", 0, 20, 3),
        slots=whole("slots", 1, 256, 32),
        recency_decay=fraction("memory.recency_decay", v.get("recency_decay", 0.995), 0.0, 1.0),
        weight_recency=fraction("memory.weights.recency", weights.get("recency", 1.0), 0.0, 100.0),
        weight_importance=fraction("memory.weights.importance", weights.get("importance", 1.0), 0.0, 100.0),
        weight_relevance=fraction("memory.weights.relevance", weights.get("relevance", 1.0), 0.0, 100.0),
        reflect_threshold=whole("reflect_threshold", 1, 10_000, 12),
        reflect_memories=whole("reflect_memories", 1, 20, 5))
    if out.retrieve > out.slots:
        raise problem("memory.retrieve", f"{out.retrieve} must not exceed memory.slots ({out.slots})")
    return out


# --------------------------------------------------------------------------
# text: keywords, importance, excerpts

_BITS: dict[bytes, int] = {}
_SIGS: dict[str, int] = {}
_CACHE_MAX = 1 << 17


def _bit(word: bytes) -> int:
    b = _BITS.get(word)
    if b is None:
        # crc32, not hash(): the same on every machine and in every process (PYTHONHASHSEED)
        b = 1 << (zlib.crc32(word) & 63)
        if len(_BITS) >= _CACHE_MAX:
            _BITS.clear()
        _BITS[word] = b
    return b


def _byte_words(text: str) -> list[bytes]:
    """The text lower-cased, as UTF-8, split at every run of anything but
    letters and digits (in any script).  In bytes: bytes.translate is a C
    table, several times faster than str.translate's dict or the regular
    expression, which only splits the words with bytes beyond ASCII (a dash,
    an accent), where the two could differ; UTF-8 puts no ASCII byte inside
    a character, so the two splits agree."""
    raw = text.lower().encode("utf-8", "surrogatepass")
    ws = raw.translate(_ASCII_TABLE).split()
    if raw.isascii():
        return ws
    out: list[bytes] = []
    for w in ws:
        if w.isascii():
            out.append(w)
        else:
            out += [x.encode("utf-8", "surrogatepass")
                    for x in _WORD.sub(" ", w.decode("utf-8", "surrogatepass")).split()]
    return out


def words(text: str) -> list[str]:
    """The text lower-cased, split at every run of anything but letters and digits (in any script)."""
    return [w.decode("utf-8", "surrogatepass") for w in _byte_words(text)]


def keywords(text: str) -> list[str]:
    """The words of ``text`` that say what it is about: longer than two bytes of UTF-8, not stop words."""
    return [w.decode("utf-8", "surrogatepass") for w in _byte_words(text) if len(w) > 2 and w not in _STOP]


def signature(text: str) -> int:
    """A 64-bit signature of the text's keywords (one bit per keyword, by CRC-32):
    relevance is the share of a query's bits a memory's signature also has."""
    s = _SIGS.get(text)
    if s is None:
        s = analyse(text)[1]
    return s


#: text -> (normalized hash, signature, has a salient word): a run makes the same texts again and again
_ANALYSED: dict[str, tuple[str, int, bool]] = {}


def analyse(text: str) -> tuple[str, int, bool]:
    """What a memory's text gives, read once: the SHA-1 of its words (what
    makes two memories the same), its keyword signature, and whether it has
    a word of feeling or news."""
    got = _ANALYSED.get(text)
    if got is not None:
        return got
    ws = _byte_words(text)
    sig = 0
    bits = _BITS
    for w in set(ws).difference(_STOP):          # each keyword once
        if len(w) > 2:
            sig |= bits.get(w) or _bit(w)
    got = (hashlib.sha1(b" ".join(ws)).hexdigest(), sig, not _SALIENT.isdisjoint(ws))
    if len(_ANALYSED) >= _CACHE_MAX:
        _ANALYSED.clear()
        _SIGS.clear()
    _ANALYSED[text] = got
    _SIGS[text] = sig
    return got


def embedding_key(text: str) -> str:
    """What a run's log names an embedded text by (its vector is logged, not the text again)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def vectors_of(logged: Any) -> dict[str, np.ndarray]:
    """The vectors of a log's ``embeddings`` payload ({"dim", "texts": [keys], "vectors": base64 of float32}),
    by text key; nothing for anything else."""
    if not isinstance(logged, dict):
        return {}
    keys, dim = logged.get("texts"), logged.get("dim")
    vecs = np.frombuffer(base64.b64decode(logged.get("vectors", "")), dtype="<f4")
    if not isinstance(keys, list) or not isinstance(dim, int) or dim <= 0 or vecs.size != len(keys) * dim:
        raise ValueError(f"an embeddings record of {len(keys) if isinstance(keys, list) else '?'} texts does not hold "
                         f"their vectors")
    return dict(zip(keys, vecs.reshape(len(keys), dim)))


def norm_hash(text: str) -> str:
    """Hash of the text lower-cased, with every run of anything but letters and digits one space."""
    return analyse(text)[0]


_EXCERPTS: dict[tuple[str, int], str] = {}


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """The first sentences of ``text`` (one, or more while they are short: at
    least 40 characters when there are), at most ``limit`` characters (cut
    at a word, with an ellipsis)."""
    got = _EXCERPTS.get((text, limit))
    if got is None:
        got = _excerpt(text, limit)
        if len(_EXCERPTS) >= _CACHE_MAX:
            _EXCERPTS.clear()
        _EXCERPTS[(text, limit)] = got
    return got


def _excerpt(text: str, limit: int) -> str:
    t = " ".join(text.split())
    # sentence by sentence from the start, not a split of the whole text: a turn can be long
    out, pos = t, 0
    while True:
        m = _SENTENCE_END.search(t, pos)
        if m is None:
            out = t
            break
        out = t[:m.start()]
        if len(out) >= 40:
            break
        pos = m.end()
    if len(out) > limit:
        out = out[:limit - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    if out.count('"') % 2:                       # a quotation the cut left open is closed
        out += '"'
    return out


def importance(kind: str, text: str, *, family: bool = False, close: bool = False, first_meeting: bool = False,
               disagreement: bool = False) -> int:
    """How much a memory matters, from 1 to 10, by rules: what kind of
    memory it is (a scripted event 6, a conversation 3, a meeting 2, a
    thought 2, being turned away 1, an insight 5), +2 with family, +1 with a
    close friend, +1 for a first meeting, +2 for a disagreement, +1 for
    words that carry feeling or news (love, worried, promotion, ...)."""
    score = _BASE.get(kind, 2)
    if family:
        score += 2
    elif close:
        score += 1
    if first_meeting:
        score += 1
    if disagreement:
        score += 2
    if analyse(text)[2]:
        score += 1
    return max(1, min(10, score))


_BASE = {"scripted": 6, "conversation": 3, "meeting": 2, "reflection": 2, "refused": 1, "insight": 5}


def minute_of(stamp: Any) -> int:
    """Minutes since 1970 of a stored time (ISO text, ``Z`` or naive UTC, or
    the sandbox's ``2025-11-18 11:29:38.824966``); 0 for what is not a time."""
    if not isinstance(stamp, str):
        return 0
    try:
        t = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return 0
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    # within what the table's int32 minutes hold (1970 to 6053)
    return min(max(int((t - _EPOCH).total_seconds() // 60), 0), 2 ** 31 - 1)


def _key(agent: int, norm_hash: str) -> object:
    """What makes a memory the same as one the agent holds: an int for a
    SHA-1 (ours, and the sandbox's: small in a set of millions), else
    (hash, agent) for a hash another program wrote in its own form (the
    sandbox's world loop writes ``reflection_0_2``)."""
    if len(norm_hash) == 40 and norm_hash.isalnum():
        try:
            return (int(norm_hash[:16], 16) << 32) ^ agent
        except ValueError:
            pass
    return (norm_hash, agent)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 (numpy 2's bitwise_count, or a byte table on numpy 1.26)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return count(x).astype(np.int64)
    return _POPCOUNT8[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.int64)


# --------------------------------------------------------------------------
# the table

class MemoryStream:
    """Every agent's memories within reach, as (agents x slots) arrays."""

    def __init__(self, n: int, settings: MemorySettings):
        self.settings = settings
        s = settings.slots
        # 17 bytes a slot: 32 slots of a million agents take 544 MB
        self.text_id = np.full((n, s), -1, dtype=np.int32)       # into self.texts; -1: an empty slot
        self.minute = np.zeros((n, s), dtype=np.int32)           # minutes since 1970 it was made (to 6053)
        self.imp = np.zeros((n, s), dtype=np.int8)               # importance, 1..10
        self.sig = np.zeros((n, s), dtype=np.uint64)
        self.filled = np.zeros(n, dtype=np.int64)
        self.texts: list[str] = []
        self._seen: set[object] = set()                            # (hash, agent): a memory is kept once
        #: importance summed since each agent's last reflection (a checkpoint keeps it)
        self.pending = np.zeros(n, dtype=np.int64)
        #: with embedding relevance: each slot's unit vector (made at the first vectors given)
        self.vec: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, agents: Sequence[int], texts: Sequence[str], imps: Sequence[int], minutes: Sequence[int] | int,
            hashes: Sequence[str], *, count: bool = True, vectors: Any = None) -> list[bool]:
        """Add memories (agent positions, texts, importance, minute made,
        normalized hashes) in the order given; one an agent already holds
        (same hash) is left out.  Returns which were kept.  ``count``: add
        their importance to the agents' pending total (not for memories
        loaded from before the run).  ``vectors``: with embedding relevance,
        text -> its unit vector, for every text given."""
        seen = self._seen
        kept: list[bool] = []
        keep_agent: list[int] = []
        keep_tid: list[int] = []
        keep_imp: list[int] = []
        keep_min: list[int] = []
        keep_sig: list[int] = []
        made = [minutes] * len(agents) if isinstance(minutes, int) else minutes
        base = len(self.texts)
        for k, (a, text, h) in enumerate(zip(agents, texts, hashes)):
            key = _key(a, h)
            if key in seen:
                kept.append(False)
                continue
            seen.add(key)
            kept.append(True)
            keep_agent.append(a)
            keep_tid.append(base + len(keep_tid))
            keep_imp.append(imps[k])
            keep_min.append(made[k])
            keep_sig.append(_SIGS.get(text) or signature(text))
            self.texts.append(text)
        if keep_agent:
            vecs = None
            if vectors is not None:
                vecs = np.stack([vectors[self.texts[t]] for t in keep_tid]).astype(np.float32)
                self._vectors_of(vecs.shape[1])
            self._place(np.array(keep_agent, dtype=np.int64), np.array(keep_tid, dtype=np.int64),
                        np.array(keep_imp, dtype=np.int64), np.array(keep_min, dtype=np.int64),
                        np.array(keep_sig, dtype=np.uint64), count, vecs)
        return kept

    def _vectors_of(self, dim: int) -> None:
        if self.vec is None:
            n, s = self.text_id.shape
            if n * s * dim * 4 > MAX_VECTOR_BYTES:
                raise ConfigError(f"memory.relevance: embedding: {n:,} agents x {s} slots x {dim} dimensions take "
                                  f"{n * s * dim * 4 / 2 ** 30:.1f} GiB; use keywords, or fewer memory.slots")
            self.vec = np.zeros((n, s, dim), dtype=np.float32)
        elif self.vec.shape[2] != dim:
            raise ConfigError(f"memory.relevance: embedding: vectors of {dim} dimensions after {self.vec.shape[2]}")

    def texts_held(self) -> list[str]:
        """The texts in the agents' slots (each once, in slot order)."""
        return list(dict.fromkeys(self.texts[t] for t in self.text_id[self.text_id >= 0].tolist()))

    def set_vectors(self, vectors: Any) -> None:
        """Give every held memory its vector (text -> unit vector): memories loaded before the run."""
        held = np.argwhere(self.text_id >= 0)
        if not len(held):
            return
        first = vectors[self.texts[int(self.text_id[held[0][0], held[0][1]])]]
        self._vectors_of(len(first))
        assert self.vec is not None
        for a, k in held.tolist():
            self.vec[a, k] = vectors[self.texts[int(self.text_id[a, k])]]

    def holds(self, agent: int, norm_hash: str) -> bool:
        """Whether the agent has a memory with this hash (kept once)."""
        return _key(agent, norm_hash) in self._seen

    def holding(self, norm_hash: str, agents: list[int]) -> list[bool]:
        """:meth:`holds` for many agents and one hash (a place's refusal, met by thousands a tick)."""
        seen = self._seen
        base = _key(0, norm_hash)
        if isinstance(base, int):
            return [(base ^ a) in seen for a in agents]
        return [(norm_hash, a) in seen for a in agents]

    def _place(self, a: np.ndarray, tid: np.ndarray, imp: np.ndarray, minute: np.ndarray, sig: np.ndarray,
               count: bool, vecs: np.ndarray | None = None) -> None:
        # each agent's memories in the order given: the k-th memory of every agent in round k, so that an
        # agent's table depends on its memories' order alone, never on how they were batched
        order = np.argsort(a, kind="stable")
        sa = a[order]
        starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])
        rank = np.empty(len(a), dtype=np.int64)
        rank[order] = np.arange(len(a)) - np.repeat(starts, np.diff(np.r_[starts, len(a)]))
        s = self.settings.slots
        for r in range(int(rank.max()) + 1):
            sel = np.flatnonzero(rank == r)
            who = a[sel]
            slot = self.filled[who].copy()
            full = slot >= s
            if full.any():
                # the least important memory gives way, the oldest of those (then the first slot)
                f = who[full]
                evict = self.imp[f].astype(np.int64) * (1 << 40) + self.minute[f]
                slot[full] = np.argmin(evict, axis=1)
            self.filled[who[~full]] += 1
            self.text_id[who, slot] = tid[sel]
            self.imp[who, slot] = imp[sel]
            self.minute[who, slot] = minute[sel]
            self.sig[who, slot] = sig[sel]
            if vecs is not None and self.vec is not None:
                self.vec[who, slot] = vecs[sel]
        if count:
            np.add.at(self.pending, a, imp)

    def retrieve(self, who: np.ndarray, query: np.ndarray, now: int, k: int | None = None,
                 relevance: bool = True, query_vecs: np.ndarray | None = None) -> list[list[str]]:
        """The ``k`` (``memory.retrieve``) best memories of each agent in
        ``who`` (positions, repeats allowed) for the query signatures
        ``query`` (uint64, one per row), at ``now`` (minutes since 1970):
        the texts, best first.  Score: weights x (recency decay ** hours
        since made, importance / 10, the share of the query's keywords the
        memory has; with ``query_vecs``, one unit vector per row, the cosine
        of the query and the memory instead, below 0 as 0).  Ties go to the
        lower slot: the order is exact."""
        st = self.settings
        k = st.retrieve if k is None else k
        if k <= 0 or len(who) == 0:
            return [[] for _ in range(len(who))]
        out: list[list[str]] = [[] for _ in range(len(who))]
        rows = np.flatnonzero(self.filled[who] > 0)       # those who remember anything
        if len(rows) == 0:
            return out
        if len(rows) < len(who):
            sub = None if query_vecs is None else query_vecs[rows]
            for r, texts in zip(rows.tolist(), self.retrieve(who[rows], np.asarray(query)[rows], now, k, relevance,
                                                             sub)):
                out[r] = texts
            return out
        tid = self.text_id[who]
        now = min(now, 2 ** 31 - 1)              # as the table's int32 minutes hold times
        hours = np.maximum(now - self.minute[who].astype(np.int64), 0) / 60.0
        # decay ** hours as exp(hours x ln decay): numpy's exp is several times faster than its power
        recency = np.exp(hours * np.log(st.recency_decay)) if st.recency_decay > 0 else (hours == 0).astype(float)
        score = st.weight_recency * recency + st.weight_importance * self.imp[who] / 10.0
        if relevance and st.weight_relevance:
            if query_vecs is not None and self.vec is not None:
                # float64 products summed by numpy (pairwise, in a fixed order): the same scores on every run
                cos = (self.vec[who].astype(np.float64) * query_vecs[:, None, :].astype(np.float64)).sum(axis=2)
                score += st.weight_relevance * np.clip(cos, 0.0, 1.0)
            else:
                q = np.asarray(query, dtype=np.uint64)
                have = _popcount(self.sig[who] & q[:, None])
                score += st.weight_relevance * have / np.maximum(_popcount(q), 1)[:, None]
        s = tid.shape[1]
        # scores to integers (a millionth) with the slot as the tie-break: the same order on every machine,
        # whatever algorithm argpartition uses
        key = np.round(score * 1e6).astype(np.int64) * s + (s - 1 - np.arange(s))
        key[tid < 0] = -(1 << 62)             # below any score (and safe to negate)
        k = min(k, s)
        top = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < s else np.broadcast_to(np.arange(s), key.shape)
        top_keys = np.take_along_axis(key, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_keys, axis=1, kind="stable"), axis=1)
        picked = np.take_along_axis(tid, top, axis=1).tolist()
        texts = self.texts
        return [[texts[t] for t in row if t >= 0] for row in picked]

    def load(self, rows: Iterable[tuple[int, str, int, Any, str]]) -> int:
        """Memories stored before (agent position, text, importance, time
        made, normalized hash), in the order they were made (by id)."""
        agents, texts, imps, minutes, hashes = [], [], [], [], []
        for a, text, imp, made, h in rows:
            agents.append(a)
            texts.append(text)
            imps.append(max(1, min(10, int(imp))) if isinstance(imp, (int, float)) else 3)
            minutes.append(minute_of(made))
            hashes.append(h)
        kept = self.add(agents, texts, imps, minutes, hashes, count=False)
        return sum(kept)

