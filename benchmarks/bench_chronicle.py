"""The chronicle (``.cmeta`` ledger) measured against what a user would store
the same cycle records in instead, in one process, on the same data; prints
ratio tables.

    python benchmarks/bench_chronicle.py                 # everything (about two minutes)
    python benchmarks/bench_chronicle.py size append     # some sections
    python benchmarks/bench_chronicle.py load --big 2000000 --variants ms
    python benchmarks/bench_chronicle.py --json out.json

Sections (standard workload, variant "ms" first, then "seq"):

size    bytes per record on disk: chronicle vs JSON lines, SQLite (apsw),
        Parquet (the smallest of a grid of settings) and TFRecord-style framing
        of the raw 38-byte rows; n = --n records (default 1,000,000).
append  ``Chronicle.append`` per record through to a closed file vs buffered
        ``f.write(struct.pack(...))`` per record (min(200,000, --n) records);
        ``Chronicle.extend`` of --n numpy records + close, in records/s.
load    ``to_numpy`` of a --big record file (default 10,000,000) vs
        ``pq.read_table`` + ``to_numpy`` of the best-size Parquet file.
query   ``query_columns`` of 1,000 consecutive records from the middle of the
        big file: opened once, and including the open.
verify  ``verify`` of the big file, in the page cache, vs a bare CRC-64 of it.

Every implementation is checked to give back the same records before it is
timed; each figure is the median of several repeats, after a warm-up.  The
big files are written once (in a temporary directory, removed at the end)
and shared by load, query and verify.  JSON lines and SQLite are only
measured at --n: at 10,000,000 records they take minutes to write.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from chronoledger import core, workload
from chronoledger.chronicle import Chronicle, verify

RESULTS: dict[str, dict] = {}
SCALE = 1e-6                           # the specification's fixed-point scale (precision=1e-6)
EXACT = None                           # precision=None: every float exact (the chronicle's default)
ROW = struct.Struct("<QBff3fBQ")       # the raw 38-byte record (workload.RECORD_DTYPE)
assert ROW.size == workload.RECORD_BYTES


class Options:
    n = workload.DEFAULT_N
    big = 10_000_000
    variants: tuple[str, ...] = ("ms", "seq")
    workdir: Path = Path(".")


OPT = Options()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, interleaved_medians, median_seconds, table  # noqa: E402  (shared helpers)
import entropy_floor  # noqa: E402  (the size section's bound)

target = Targets()


# ---------------------------------------------------------------------------
# Data: the standard workload, its chronicle columns, and what each store
# must give back.

_DATA: dict[tuple[str, int], dict[str, np.ndarray]] = {}


def data(variant: str, n: int) -> dict[str, np.ndarray]:
    """n records of the standard workload; above 1M, generated in 1M chunks
    with seeds DEFAULT_SEED + k and timestamps shifted to keep increasing."""
    key = (variant, n)
    if key not in _DATA:
        chunk = workload.DEFAULT_N
        if n <= chunk:
            _DATA[key] = workload.generate(n, variant)
        else:
            parts = []
            prev = None
            step = 1 if variant == "seq" else int(workload.MS_STEP_MEAN)
            for k in range(-(-n // chunk)):
                c = workload.generate(min(chunk, n - k * chunk), variant, seed=workload.DEFAULT_SEED + k)
                if prev is not None:
                    ts = c["timestamp"]
                    c["timestamp"] = ts - ts[0] + np.uint64(prev + step)
                prev = int(c["timestamp"][-1])
                parts.append(c)
            _DATA[key] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            del parts
    return _DATA[key]


def chronicle_columns(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The workload as ``Chronicle.extend`` takes it."""
    return {
        "timestamp": cols["timestamp"], "phase": cols["phase"], "loss_value": cols["loss"],
        "coherence": cols["coherence"], "tensor_signature": cols["tensor_signature"],
        "action_code": np.where(cols["action_present"], cols["action_code"].astype(np.int16), np.int16(-1)),
        "seed_state": cols["seed_state"],
    }


LABELS = {"phase": list(workload.PHASES)}
FLOATS = ("loss", "coherence", "tensor0", "tensor1", "tensor2")


def float_columns(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"loss": cols["loss"], "coherence": cols["coherence"]}
    for j in range(3):
        out[f"tensor{j}"] = np.ascontiguousarray(cols["tensor_signature"][:, j])
    return out


def phase_strings(codes: np.ndarray) -> np.ndarray:
    names = np.empty(len(workload.PHASES), dtype=object)
    names[:] = workload.PHASES
    return names[codes]


def precision_name(precision: float | None) -> str:
    """How a row says which precision its chronicle stores floats at."""
    return "exact floats" if precision is None else f"fixed point {precision:g}"


def write_chronicle(path: Path, cols: dict[str, np.ndarray], precision: float | None = SCALE) -> None:
    with Chronicle.open(path, "w", precision=precision) as ch:
        ch.extend(chronicle_columns(cols), labels=LABELS)


def check_chronicle_numpy(got: dict[str, np.ndarray], cols: dict[str, np.ndarray], what: str,
                          precision: float | None = SCALE) -> None:
    """``to_numpy`` / ``query_columns`` output against the workload: floats are
    the float32 values themselves (exact), or the values quantized at
    ``precision`` read back as float32 (fixed point)."""
    n = len(cols["timestamp"])
    assert len(got["timestamp"]) == n, (what, len(got["timestamp"]), n)
    assert np.array_equal(got["timestamp"], cols["timestamp"]), (what, "timestamp")
    assert np.array_equal(got["phase"], phase_strings(cols["phase"])), (what, "phase")
    names = {"loss": "loss_value", "coherence": "coherence", "tensor0": "tensor_signature.0",
             "tensor1": "tensor_signature.1", "tensor2": "tensor_signature.2"}
    for k, v in float_columns(cols).items():
        if precision is None:
            stored = v.astype(np.float32)
            assert got[names[k]].dtype == np.float32, (what, k, got[names[k]].dtype)
            assert np.array_equal(got[names[k]].view(np.uint32), stored.view(np.uint32)), (what, k)   # bit for bit
        else:
            stored = core.dequantize(core.quantize(v, precision), precision, dtype=np.float32)
            assert np.array_equal(got[names[k]], stored), (what, k)
    action = np.where(cols["action_present"], cols["action_code"].astype(np.int16), np.int16(-1))
    assert np.array_equal(got["action_code"], action), (what, "action_code")
    assert np.array_equal(got["seed_state"], cols["seed_state"]), (what, "seed_state")


# ---------------------------------------------------------------------------
# Peers

def write_jsonl(path: Path, cols: dict[str, np.ndarray]) -> None:
    """One ``json.dumps`` dict per record, floats as Python floats."""
    names = workload.PHASES
    ts = cols["timestamp"].tolist()
    ph = cols["phase"].tolist()
    loss = cols["loss"].tolist()
    coh = cols["coherence"].tolist()
    ten = cols["tensor_signature"].tolist()
    act = cols["action_code"].tolist()
    pres = cols["action_present"].tolist()
    seed = cols["seed_state"].tolist()
    dumps = json.dumps
    with open(path, "w", encoding="utf-8") as f:
        w = f.write
        for i in range(len(ts)):
            w(dumps({"timestamp": ts[i], "phase": names[ph[i]], "loss_value": loss[i], "coherence": coh[i],
                     "tensor_signature": ten[i], "action_code": act[i] if pres[i] else None,
                     "seed_state": seed[i]}))
            w("\n")


def check_jsonl(path: Path, cols: dict[str, np.ndarray]) -> None:
    with open(path, encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    assert len(recs) == len(cols["timestamp"]), "jsonl count"
    assert np.array_equal(np.array([r["timestamp"] for r in recs], dtype=np.uint64), cols["timestamp"])
    assert [r["phase"] for r in recs] == phase_strings(cols["phase"]).tolist()
    assert np.array_equal(np.array([r["loss_value"] for r in recs], dtype=np.float32), cols["loss"])
    assert np.array_equal(np.array([r["coherence"] for r in recs], dtype=np.float32), cols["coherence"])
    assert np.array_equal(np.array([r["tensor_signature"] for r in recs], dtype=np.float32),
                          cols["tensor_signature"])
    act = np.array([-1 if r["action_code"] is None else r["action_code"] for r in recs], dtype=np.int16)
    assert np.array_equal(act, np.where(cols["action_present"], cols["action_code"].astype(np.int16), -1))
    assert np.array_equal(np.array([r["seed_state"] for r in recs], dtype=np.uint64), cols["seed_state"])


SQLITE_SCHEMA = ("create table cycle(ts integer primary key, phase text not null, loss real, coherence real, "
                 "t0 real, t1 real, t2 real, action_code integer, seed_state integer)")


def write_sqlite(path: Path, cols: dict[str, np.ndarray]) -> dict:
    """One typed table (ts is the rowid: the timestamps are unique and
    increasing), all rows in one transaction with executemany."""
    import apsw

    names = workload.PHASES
    ten = cols["tensor_signature"]
    rows = zip(cols["timestamp"].view(np.int64).tolist(), [names[c] for c in cols["phase"].tolist()],
               cols["loss"].tolist(), cols["coherence"].tolist(),
               ten[:, 0].tolist(), ten[:, 1].tolist(), ten[:, 2].tolist(),
               [c if p else None for c, p in zip(cols["action_code"].tolist(), cols["action_present"].tolist())],
               cols["seed_state"].view(np.int64).tolist())   # SQLite integers are signed 64-bit
    con = apsw.Connection(str(path))
    con.execute(SQLITE_SCHEMA)
    with con:
        con.executemany("insert into cycle values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    page_size = con.execute("pragma page_size").fetchall()[0][0]
    freelist = con.execute("pragma freelist_count").fetchall()[0][0]
    con.close()
    return {"page_size": page_size, "freelist_pages": freelist}


def check_sqlite(path: Path, cols: dict[str, np.ndarray]) -> None:
    import apsw

    con = apsw.Connection(str(path))
    rows = con.execute("select * from cycle order by ts").fetchall()
    con.close()
    assert len(rows) == len(cols["timestamp"]), "sqlite count"
    c = list(zip(*rows))
    assert np.array_equal(np.array(c[0], dtype=np.int64).view(np.uint64), cols["timestamp"])
    assert list(c[1]) == phase_strings(cols["phase"]).tolist()
    for j, k in enumerate(FLOATS):
        assert np.array_equal(np.array(c[2 + j], dtype=np.float32), float_columns(cols)[k]), ("sqlite", k)
    act = np.array([-1 if a is None else a for a in c[7]], dtype=np.int16)
    assert np.array_equal(act, np.where(cols["action_present"], cols["action_code"].astype(np.int16), -1))
    assert np.array_equal(np.array(c[8], dtype=np.int64).view(np.uint64), cols["seed_state"])


def _crc32c_impl() -> tuple[Callable[[bytes], int], str]:
    try:
        import crc32c
        return crc32c.crc32c, "crc32c"
    except ImportError:
        pass
    try:
        import fastcrc
        if fastcrc.crc32.iscsi(b"123456789") == 0xE3069283:
            return fastcrc.crc32.iscsi, "CRC32C from fastcrc (crc32c not installed)"
    except ImportError:
        pass
    return zlib.crc32, "zlib.crc32 in place of CRC32C (crc32c not installed)"


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord(path: Path, cols: dict[str, np.ndarray], crc: Callable[[bytes], int]) -> None:
    """TFRecord framing of each packed 38-byte row: u64 length, u32 masked
    CRC32C of the length, the row, u32 masked CRC32C of the row."""
    rows = workload.pack_records(cols).tobytes()
    size = workload.RECORD_BYTES
    u64, u32 = struct.Struct("<Q").pack, struct.Struct("<I").pack
    with open(path, "wb") as f:
        w = f.write
        for off in range(0, len(rows), size):
            payload = rows[off:off + size]
            length = u64(len(payload))
            w(length)
            w(u32(_masked(crc(length))))
            w(payload)
            w(u32(_masked(crc(payload))))


def check_tfrecord(path: Path, cols: dict[str, np.ndarray], crc: Callable[[bytes], int]) -> None:
    frame = np.dtype([("len", "<u8"), ("len_crc", "<u4"), ("row", workload.RECORD_DTYPE), ("crc", "<u4")])
    got = np.fromfile(path, dtype=frame)
    rows = workload.pack_records(cols)
    assert len(got) == len(rows) and bool(np.all(got["len"] == workload.RECORD_BYTES)), "tfrecord framing"
    assert got["row"].tobytes() == rows.tobytes(), "tfrecord rows"
    for i in range(0, len(got), max(1, len(got) // 1000)):   # the CRCs, on a sample
        assert got["crc"][i] == _masked(crc(got["row"][i].tobytes())), ("tfrecord crc", i)
        assert got["len_crc"][i] == _masked(crc(struct.pack("<Q", workload.RECORD_BYTES))), ("tfrecord len crc", i)


# Parquet: a grid of settings; the smallest file is "Parquet (best)".
PARQUET_GRID = {
    "floats": ("quantized", "float32"),        # int64 at 1e-6 + DELTA_BINARY_PACKED | raw f32 + BYTE_STREAM_SPLIT
    "phase": ("dictionary", "u8-delta"),       # strings, dictionary-encoded | u8 codes, DELTA_BINARY_PACKED
    "seed": ("PLAIN", "DELTA_BINARY_PACKED"),
    "statistics": (True, False),
    "zstd": (1, 3, 9),
}


def parquet_table(cols: dict[str, np.ndarray], cfg: dict):
    import pyarrow as pa

    arrays = {"timestamp": pa.array(cols["timestamp"])}
    enc = {"timestamp": "DELTA_BINARY_PACKED"}
    dictionary = ["action_code"]
    if cfg["phase"] == "dictionary":
        arrays["phase"] = pa.DictionaryArray.from_arrays(
            pa.array(cols["phase"].astype(np.int8)), pa.array(list(workload.PHASES))).cast(pa.string())
        dictionary.append("phase")
    else:
        arrays["phase"] = pa.array(cols["phase"])
        enc["phase"] = "DELTA_BINARY_PACKED"
    for k, v in float_columns(cols).items():
        if cfg["floats"] == "quantized":
            arrays[k] = pa.array(core.quantize(v, SCALE))
            enc[k] = "DELTA_BINARY_PACKED"
        else:
            arrays[k] = pa.array(v)
            enc[k] = "BYTE_STREAM_SPLIT"
    arrays["action_code"] = pa.array(cols["action_code"], mask=~cols["action_present"])   # nullable u8
    arrays["seed_state"] = pa.array(cols["seed_state"])
    enc["seed_state"] = cfg["seed"]
    return pa.table(arrays), dictionary, enc


def write_parquet(dest, cols: dict[str, np.ndarray], cfg: dict) -> None:
    import pyarrow.parquet as pq

    tab, dictionary, enc = parquet_table(cols, cfg)
    pq.write_table(tab, dest, use_dictionary=dictionary, column_encoding=enc, compression="zstd",
                   compression_level=cfg["zstd"], write_statistics=cfg["statistics"])


def read_parquet(path, **kw) -> list[np.ndarray]:
    import pyarrow.parquet as pq

    tab = pq.read_table(path, **kw)
    return [tab.column(i).to_numpy() for i in range(tab.num_columns)]


def check_parquet(got: list[np.ndarray], cols: dict[str, np.ndarray], cfg: dict) -> None:
    ts, phase, *floats, action, seed = got
    assert np.array_equal(ts, cols["timestamp"]), "parquet timestamp"
    if cfg["phase"] == "dictionary":
        assert np.array_equal(phase, phase_strings(cols["phase"])), "parquet phase"
    else:
        assert np.array_equal(phase, cols["phase"]), "parquet phase"
    for k, f in zip(FLOATS, floats):
        v = float_columns(cols)[k]
        assert np.array_equal(f, core.quantize(v, SCALE) if cfg["floats"] == "quantized" else v), ("parquet", k)
    present = cols["action_present"]
    assert np.array_equal(np.isnan(action), ~present), "parquet action presence"
    assert np.array_equal(action[present], cols["action_code"][present]), "parquet action_code"
    assert np.array_equal(seed, cols["seed_state"]), "parquet seed_state"


def cfg_name(cfg: dict) -> str:
    return (f"{cfg['floats']} floats, phase {cfg['phase']}, seed {cfg['seed']}, "
            f"stats {'on' if cfg['statistics'] else 'off'}, zstd-{cfg['zstd']}")


_BEST_PARQUET: dict[str, tuple[dict, list]] = {}


def best_parquet(variant: str) -> tuple[dict, list]:
    """(the smallest configuration, [(bytes, cfg) for every configuration])
    on --n records of ``variant``."""
    if variant not in _BEST_PARQUET:
        cols = data(variant, OPT.n)
        sizes = []
        keys = list(PARQUET_GRID)
        for values in itertools.product(*PARQUET_GRID.values()):
            cfg = dict(zip(keys, values))
            buf = io.BytesIO()
            write_parquet(buf, cols, cfg)
            sizes.append((len(buf.getvalue()), cfg))
        sizes.sort(key=lambda x: x[0])
        _BEST_PARQUET[variant] = (sizes[0][1], sizes)
    return _BEST_PARQUET[variant]


# ---------------------------------------------------------------------------

def bench_size() -> None:
    n = OPT.n
    crc, crc_name = _crc32c_impl()
    out = {}
    rows = []
    d = OPT.workdir / "size"
    d.mkdir(exist_ok=True)
    fixed_name, exact_name = (f"chronoledger (.cmeta), {precision_name(SCALE)}",
                              f"chronoledger (.cmeta), {precision_name(EXACT)}")
    for variant in OPT.variants:
        cols = data(variant, n)
        mine = {}
        for name, precision in ((fixed_name, SCALE), (exact_name, EXACT)):
            ours_p = d / f"{variant}.{'fixed' if precision else 'exact'}.cmeta"
            write_chronicle(ours_p, cols, precision)
            with Chronicle.open(ours_p) as ch:
                check_chronicle_numpy(ch.to_numpy(), cols, f"chronicle, {precision_name(precision)}", precision)
            assert verify(ours_p).ok
            mine[name] = os.path.getsize(ours_p)
        ours = mine[fixed_name]
        # B/record of the values at 1e-6 (above 1M records the data is generated in chunks: no bound)
        floor = sum(entropy_floor.floors(n, variant).values()) if n <= workload.DEFAULT_N else float("nan")

        jsonl_p = d / f"{variant}.jsonl"
        write_jsonl(jsonl_p, cols)
        check_jsonl(jsonl_p, cols)

        sqlite_p = d / f"{variant}.sqlite"
        sq = write_sqlite(sqlite_p, cols)
        check_sqlite(sqlite_p, cols)

        tf_p = d / f"{variant}.tfrecord"
        write_tfrecord(tf_p, cols, crc)
        check_tfrecord(tf_p, cols, crc)

        best_cfg, grid = best_parquet(variant)
        pq_p = d / f"{variant}.parquet"
        write_parquet(pq_p, cols, best_cfg)
        check_parquet(read_parquet(pq_p), cols, best_cfg)
        lossless = next((s, c) for s, c in grid if c["floats"] == "float32")
        pq_f32_p = d / f"{variant}.f32.parquet"
        write_parquet(pq_f32_p, cols, lossless[1])
        check_parquet(read_parquet(pq_f32_p), cols, lossless[1])

        sizes = {
            **mine,
            "JSON lines": os.path.getsize(jsonl_p),
            "SQLite (apsw, typed table)": os.path.getsize(sqlite_p),
            "TFRecord framing of 38-byte rows": os.path.getsize(tf_p),
            f"Parquet (best: {cfg_name(best_cfg)})": os.path.getsize(pq_p),
            f"Parquet, raw float32 (best: {cfg_name(lossless[1])})": os.path.getsize(pq_f32_p),
        }
        peers = {k: v for k, v in sizes.items() if not k.startswith("chronoledger")}
        best_peer = min(peers, key=peers.get)
        for name, size in sizes.items():
            rows.append([variant, name, f"{size / n:.3f}",
                         "" if name.startswith("chronoledger") else f"{ours / size:.4f}"])
        rows.append([variant, "entropy bound of the 1e-6 values (entropy_floor.py)", f"{floor:.3f}", ""])
        ratio = ours / peers[best_peer]
        lossless_peer = f"Parquet, raw float32 (best: {cfg_name(lossless[1])})"
        out[variant] = {
            "n": n, "bytes_per_record": {k: v / n for k, v in sizes.items()},
            "entropy_floor_bytes_per_record": floor, "fixed_over_floor": ours / n / floor,
            "exact_over_raw_float32_parquet": mine[exact_name] / sizes[lossless_peer],
            "best_peer": best_peer, "ours_over_best_peer": ratio,
            "parquet_best_config": best_cfg,
            "parquet_grid_bytes_per_record": [[cfg_name(c), s / n] for s, c in grid],
            "sqlite": sq, "tfrecord_crc": crc_name,
        }
        if floor == floor:
            target(f"size ({variant}), fixed point 1e-6: whole file / entropy bound", "<= 1.01",
                   f"{ours / n / floor:.4f} ({ours / n:.3f} vs {floor:.3f} B/rec)", ours / n <= 1.01 * floor)
        for p in d.iterdir():
            p.unlink()
    table(f"Bytes per record on disk, n = {n:,} (raw packed row: {workload.RECORD_BYTES} B). "
          f"Chronicle floats are fixed point at 1e-6 (precision=1e-6, 'ours / this' is this file), as are the "
          f"'quantized' Parquet settings, or exact (the default: the float32 bits);\n"
          f"JSON lines, SQLite (REAL = 8 bytes), TFRecord and 'float32' Parquet keep the float32 values exactly. "
          f"SQLite: ts is the rowid, page size {sq['page_size']}, {sq['freelist_pages']} free pages (VACUUM "
          f"would not shrink it).\nTFRecord CRCs: {crc_name}. Parquet (best) is the smallest of "
          f"{len(grid)} settings ({', '.join(PARQUET_GRID)}).",
          ["variant", "store", "B/record", "ours / this"], rows)
    RESULTS["size"] = out


# ---------------------------------------------------------------------------

def _append_variant(variant: str, d: Path, n: int, n_ext: int) -> tuple[dict, list]:
    cols = data(variant, n)
    names = workload.PHASES
    # the Python values, built outside the timed region for both sides
    ten = cols["tensor_signature"].tolist()
    act = [c if p else None for c, p in zip(cols["action_code"].tolist(), cols["action_present"].tolist())]
    ours_rows = list(zip(cols["timestamp"].tolist(), [names[c] for c in cols["phase"].tolist()],
                         cols["loss"].tolist(), cols["coherence"].tolist(), [tuple(t) for t in ten],
                         act, cols["seed_state"].tolist()))
    base_rows = [(t, c, lo, co, t0, t1, t2, workload.ACTION_ABSENT if a is None else a, s)
                 for (t, _, lo, co, (t0, t1, t2), a, s), c in zip(ours_rows, cols["phase"].tolist())]
    ours_p = d / f"{variant}.cmeta"
    base_p = d / f"{variant}.rows"

    def ours(durability="os", precision=EXACT):
        with Chronicle.open(ours_p, "w", durability=durability, precision=precision) as ch:
            rec = ch.append_cycle                 # the compiled, positional record call
            for r in ours_rows:
                rec(*r)

    def ours_keywords():
        with Chronicle.open(ours_p, "w") as ch:
            append = ch.append
            for t, ph, lo, co, ts3, a, s in ours_rows:
                append(timestamp=t, phase=ph, loss_value=lo, coherence=co, tensor_signature=ts3,
                       action_code=a, seed_state=s)

    def baseline(sync=False):
        pack = ROW.pack
        with open(base_p, "wb") as f:
            w = f.write
            for r in base_rows:
                w(pack(*r))
            f.flush()
            if sync:
                os.fsync(f.fileno())

    for precision in (EXACT, SCALE):
        ours(precision=precision)
        with Chronicle.open(ours_p) as ch:
            check_chronicle_numpy(ch.to_numpy(), cols, f"chronicle append, {precision_name(precision)}", precision)
    baseline()
    assert base_p.read_bytes() == workload.pack_records(cols).tobytes(), "baseline rows"

    # Like with like: ours without fsync against the flushed peer, ours with
    # its default fsync on close against the peer with an fsync.
    # os.sync before each call: no side pays for the writeback of the file
    # the one before it left dirty (the fsync variants would, in their fsync)
    t_none, t_base, t_ours, t_sync, t_fixed = (t / n for t in interleaved_medians(
        [lambda: ours("none"), baseline, ours, lambda: baseline(True), lambda: ours("none", SCALE)], 9,
        before=os.sync))
    t_kw = median_seconds(ours_keywords, 3) / n

    big = data(variant, n_ext)
    ext = chronicle_columns(big)
    ext_p = d / f"{variant}.extend.cmeta"
    raw_p = d / f"{variant}.extend.rows"

    def ours_extend(durability="os", precision=EXACT):
        with Chronicle.open(ext_p, "w", durability=durability, precision=precision) as ch:
            ch.extend(ext, labels=LABELS)

    def raw_rows(sync=False):
        with open(raw_p, "wb") as f:
            f.write(workload.pack_records(big).data)
            f.flush()
            if sync:
                os.fsync(f.fileno())

    for precision in (EXACT, SCALE):
        ours_extend(precision=precision)
        with Chronicle.open(ext_p) as ch:
            check_chronicle_numpy(ch.to_numpy(), big, f"chronicle extend, {precision_name(precision)}", precision)
    raw_rows()
    assert raw_p.read_bytes() == workload.pack_records(big).tobytes(), "raw rows"

    t_ext_none, t_raw, t_ext, t_raw_sync, t_ext_fixed_none, t_ext_fixed = interleaved_medians(
        [lambda: ours_extend("none"), raw_rows, ours_extend, lambda: raw_rows(True),
         lambda: ours_extend("none", SCALE), lambda: ours_extend("os", SCALE)], 9, before=os.sync)
    ratio, ratio_sync = t_none / t_base, t_ours / t_sync
    rows = [
        [variant, f"Chronicle.append_cycle per record + close, durability='none', exact floats ({n:,})",
         f"{t_none * 1e9:.0f}", "", f"{ratio:.2f}"],
        [variant, "f.write(struct.pack(...)) per record + flush", f"{t_base * 1e9:.0f}", "", "1.00"],
        [variant, "Chronicle.append_cycle, default durability (fsync on close), exact floats",
         f"{t_ours * 1e9:.0f}", "", f"{ratio_sync:.2f}"],
        [variant, "f.write(struct.pack(...)) + flush + os.fsync", f"{t_sync * 1e9:.0f}", "", "1.00"],
        [variant, "  Chronicle.append(**keywords) instead of append_cycle", f"{t_kw * 1e9:.0f}", "",
         f"{t_kw / t_sync:.2f}"],
        [variant, "  append_cycle, durability='none', fixed point 1e-6", f"{t_fixed * 1e9:.0f}", "",
         f"{t_fixed / t_base:.2f}"],
        [variant, f"Chronicle.extend numpy + close, durability='none', exact floats ({n_ext:,})",
         f"{t_ext_none / n_ext * 1e9:.1f}", f"{n_ext / t_ext_none / 1e6:.1f}", f"{t_ext_none / t_raw:.2f}"],
        [variant, "  pack_records + one f.write of the raw rows", f"{t_raw / n_ext * 1e9:.1f}",
         f"{n_ext / t_raw / 1e6:.1f}", "1.00"],
        [variant, "Chronicle.extend numpy + close, default durability, exact floats", f"{t_ext / n_ext * 1e9:.1f}",
         f"{n_ext / t_ext / 1e6:.1f}", f"{t_ext / t_raw_sync:.2f}"],
        [variant, "  same raw rows + os.fsync", f"{t_raw_sync / n_ext * 1e9:.1f}",
         f"{n_ext / t_raw_sync / 1e6:.1f}", "1.00"],
        [variant, "  extend, durability='none', fixed point 1e-6", f"{t_ext_fixed_none / n_ext * 1e9:.1f}",
         f"{n_ext / t_ext_fixed_none / 1e6:.1f}", f"{t_ext_fixed_none / t_raw:.2f}"],
        [variant, "  extend, default durability, fixed point 1e-6", f"{t_ext_fixed / n_ext * 1e9:.1f}",
         f"{n_ext / t_ext_fixed / 1e6:.1f}", f"{t_ext_fixed / t_raw_sync:.2f}"],
    ]
    fig = {"append_none_ns": t_none * 1e9, "append_ns": t_ours * 1e9, "append_keywords_ns": t_kw * 1e9,
           "baseline_write_ns": t_base * 1e9, "baseline_write_fsync_ns": t_sync * 1e9,
           "append_over_baseline": ratio, "append_over_baseline_fsync": ratio_sync,
           "extend_none_records_per_s": n_ext / t_ext_none, "extend_records_per_s": n_ext / t_ext,
           "append_none_fixed_ns": t_fixed * 1e9, "extend_none_fixed_records_per_s": n_ext / t_ext_fixed_none,
           "extend_fixed_records_per_s": n_ext / t_ext_fixed, "precision": "exact (fixed 1e-6 where named)",
           "raw_rows_write_records_per_s": n_ext / t_raw, "append_n": n, "extend_n": n_ext}
    target(f"append ({variant}), exact floats, no fsync on either side: ours / struct.pack+write", "<= 0.7",
           f"{ratio:.2f} ({t_none * 1e9:.0f} vs {t_base * 1e9:.0f} ns)", ratio <= 0.7)
    target(f"append ({variant}), exact floats, fsync at the end on both sides", "<= 0.7",
           f"{ratio_sync:.2f} ({t_ours * 1e9:.0f} vs {t_sync * 1e9:.0f} ns)", ratio_sync <= 0.7)
    target(f"extend + close ({variant}), {n_ext:,} records, exact floats, durability='none'", ">= 20 M records/s",
           f"{n_ext / t_ext_none / 1e6:.1f} M/s", n_ext / t_ext_none >= 20e6)
    target(f"extend + close ({variant}), {n_ext:,} records, exact floats, fsync on close", ">= 20 M records/s",
           f"{n_ext / t_ext / 1e6:.1f} M/s", n_ext / t_ext >= 20e6)
    return fig, rows


def _per_variant(key: str, run, title: str, header: list[str], after=None) -> None:
    """Run ``run(variant) -> (figures, rows)`` for every variant, print one table, keep the figures."""
    out, rows = {}, []
    for variant in OPT.variants:
        out[variant], r = run(variant)
        rows += r
        if after is not None:
            after()
    table(title, header, rows)
    RESULTS[key] = out


def bench_append() -> None:
    n = min(200_000, OPT.n)
    d = OPT.workdir / "append"
    d.mkdir(exist_ok=True)
    _per_variant("append", lambda v: _append_variant(v, d, n, OPT.n),
                 "Appending records to a file (per-record rows: the Python values are built before timing; "
                 "'ours / this' = our time / this time)",
                 ["variant", "what", "ns/record", "M records/s", "ours / this"],
                 after=lambda: [p.unlink() for p in d.iterdir()])


# ---------------------------------------------------------------------------
# The big files, shared by load, query and verify.

_BIG: dict[str, dict] = {}


def big_files(variant: str) -> dict:
    """The --big record files of ``variant``: ours at fixed point 1e-6 and
    with exact floats, the best-size Parquet file (the smallest of the grid:
    quantized floats) and the smallest Parquet file that keeps the float32
    values exactly (the lossless peer of our exact floats)."""
    if variant not in _BIG:
        n = OPT.big
        cols = data(variant, n)
        d = OPT.workdir / "big"
        d.mkdir(exist_ok=True)
        files, seconds = {}, {}
        for key, precision in (("ours", SCALE), ("ours_exact", EXACT)):
            files[key] = d / f"{variant}.{key}.cmeta"
            t0 = time.perf_counter()
            write_chronicle(files[key], cols, precision)
            seconds[key] = time.perf_counter() - t0
        cfg, grid = best_parquet(variant)
        cfg_lossless = next(c for _, c in grid if c["floats"] == "float32")
        for key, c in (("parquet", cfg), ("parquet_float32", cfg_lossless)):
            files[key] = d / f"{variant}.{key}.parquet"
            t0 = time.perf_counter()
            write_parquet(files[key], cols, c)
            seconds[key] = time.perf_counter() - t0
            with open(files[key], "rb") as fh:   # no writeback of it running under the timings (ours fsyncs)
                os.fsync(fh.fileno())
        _BIG[variant] = {"n": n, "cols": cols, **files, "parquet_cfg": cfg, "parquet_float32_cfg": cfg_lossless,
                         "write_seconds": seconds}
    return _BIG[variant]


def load_ours(path) -> dict:
    """What a user's script does to load a chronicle: phase as codes + labels."""
    with Chronicle.open(path) as ch:
        return ch.to_numpy(categorical=True)


def load_parquet(path, cfg: dict) -> list:
    """Parquet's best reader for the same result: phase read as a dictionary
    (its int8 indices and its labels, no strings built), the other columns to
    numpy, and quantized floats turned back into float32 as ours are (the
    values a user wants)."""
    import pyarrow.parquet as pq

    kw = {"read_dictionary": ["phase"]} if cfg["phase"] == "dictionary" else {}
    tab = pq.read_table(path, **kw)
    out = []
    for name, col in zip(tab.column_names, tab.columns):
        if name == "phase" and kw:
            arr = col.combine_chunks()
            out.append((arr.indices.to_numpy(), arr.dictionary.to_pylist()))
        elif name in FLOATS and cfg["floats"] == "quantized":
            out.append((col.to_numpy() * SCALE).astype(np.float32))
        else:
            out.append(col.to_numpy())
    return out


def check_loaded_parquet(got: list, cols: dict[str, np.ndarray], cfg: dict) -> None:
    """load_parquet's output against the workload: the same values ours give."""
    ts, phase, *floats, action, seed = got
    if isinstance(phase, tuple):
        codes, labels = phase
        assert np.array_equal(np.asarray(labels, dtype=object)[codes], phase_strings(cols["phase"])), "parquet phase"
    else:
        assert np.array_equal(phase, cols["phase"]), "parquet phase"
    for k, f in zip(FLOATS, floats):
        v = float_columns(cols)[k]
        want = v if cfg["floats"] == "float32" else (core.quantize(v, SCALE) * SCALE).astype(np.float32)
        assert f.dtype == np.float32 and np.array_equal(f, want), ("parquet", k)
    check_parquet([ts, phase_strings(cols["phase"]) if isinstance(phase, tuple) else phase,
                   *[core.quantize(float_columns(cols)[k], SCALE) if cfg["floats"] == "quantized"
                     else float_columns(cols)[k] for k in FLOATS], action, seed], cols, cfg)


_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
import bench_chronicle as b
from chronoledger.chronicle import Chronicle
import pyarrow.parquet, pyarrow.dataset  # imported before the clock starts, as chronoledger is
kind, path = {kind!r}, {path!r}
t0 = time.perf_counter()
if kind == "ours":
    b.load_ours(path)
else:
    b.load_parquet(path, {cfg!r})
print(time.perf_counter() - t0)
"""

# A query job's child imports what a user's query script imports: chronoledger
# alone, not this module nor the Parquet peer (whose imports leave the cycle
# collector a full collection to run, about 0.9 ms, at the next allocations,
# which would be charged to the query).
_QUERY_CHILD = """
import time
from chronoledger.chronicle import Chronicle
kind, path = {kind!r}, {path!r}
t_open = time.perf_counter()
with Chronicle.open(path) as ch:
    t0 = time.perf_counter()
    got = ch.query_range({start}, {end})
    t_query = time.perf_counter() - t0
t_all = time.perf_counter() - t_open
assert len(got) == {span}, len(got)
print(t_query if kind == "query_range" else t_all)
"""


def fresh_process_medians(jobs: list[tuple[str, Path, dict]], repeat: int, start: int = 0, end: int = 0) -> list[float]:
    """Median seconds of each job's first call in a fresh Python process (as
    a user's script meets it: the libraries imported, nothing warmed up),
    the jobs run in turns; the page cache is warm for every file."""
    bench = str(Path(__file__).resolve().parent)
    times: list[list[float]] = [[] for _ in jobs]
    for _ in range(repeat):
        for (kind, path, cfg), ts in zip(jobs, times):
            child = _QUERY_CHILD if kind in ("query_range", "open_query_range") else _CHILD
            code = child.format(bench=bench, kind=kind, path=str(path), cfg=cfg, start=start, end=end,
                                span=QUERY_SPAN)
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            ts.append(float(out.stdout.split()[-1]))
    return [statistics.median(ts) for ts in times]


def _load_variant(variant: str) -> tuple[dict, list]:
    b = big_files(variant)
    n, cols = b["n"], b["cols"]
    cfg, cfg32 = b["parquet_cfg"], b["parquet_float32_cfg"]
    logical = n * workload.RECORD_BYTES

    def check_ours(got: dict, precision: float | None, what: str) -> None:
        labels = got["phase"]
        strings = np.asarray(labels.names, dtype=object)[labels.codes]
        check_chronicle_numpy(got | {"phase": strings}, cols, what, precision)

    check_ours(load_ours(b["ours"]), SCALE, "to_numpy, fixed point")
    check_ours(load_ours(b["ours_exact"]), EXACT, "to_numpy, exact")
    check_loaded_parquet(load_parquet(b["parquet"], cfg), cols, cfg)
    check_loaded_parquet(load_parquet(b["parquet_float32"], cfg32), cols, cfg32)

    jobs = [("ours", b["ours"], {}), ("parquet", b["parquet"], cfg),
            ("ours", b["ours_exact"], {}), ("parquet", b["parquet_float32"], cfg32)]
    t_fixed, t_pq, t_exact, t_pq32 = interleaved_medians(
        [lambda: load_ours(b["ours"]), lambda: load_parquet(b["parquet"], cfg),
         lambda: load_ours(b["ours_exact"]), lambda: load_parquet(b["parquet_float32"], cfg32)], 7)
    f_fixed, f_pq, f_exact, f_pq32 = fresh_process_medians(jobs, 5)
    size = {k: os.path.getsize(b[k]) for k in ("ours", "parquet", "ours_exact", "parquet_float32")}

    def row(what, key, t, f, peer_t=None, peer_f=None):
        return [variant, what, f"{size[key] / n:.3f}", f"{t * 1e3:.0f}", f"{f * 1e3:.0f}",
                f"{logical / t / 1e6:.0f}", "" if peer_t is None else f"{peer_t / t:.2f}x / {peer_f / f:.2f}x"]

    rows = [
        row("Chronicle.to_numpy(categorical=True), fixed point 1e-6", "ours", t_fixed, f_fixed, t_pq, f_pq),
        row(f"  best-size Parquet, best reader ({cfg_name(cfg)})", "parquet", t_pq, f_pq),
        row("Chronicle.to_numpy(categorical=True), exact floats", "ours_exact", t_exact, f_exact, t_pq32, f_pq32),
        row(f"  smallest lossless Parquet, best reader ({cfg_name(cfg32)})", "parquet_float32", t_pq32, f_pq32),
    ]
    fig = {"n": n, "in_turns_seconds": {"ours_fixed": t_fixed, "parquet": t_pq, "ours_exact": t_exact,
                                        "parquet_float32": t_pq32},
           "fresh_process_seconds": {"ours_fixed": f_fixed, "parquet": f_pq, "ours_exact": f_exact,
                                     "parquet_float32": f_pq32},
           "bytes_per_record": {k: v / n for k, v in size.items()},
           "parquet_config": cfg_name(cfg), "parquet_float32_config": cfg_name(cfg32),
           "write_seconds": b["write_seconds"]}
    for what, t, tp, f, fp in (("fixed point vs best-size Parquet", t_fixed, t_pq, f_fixed, f_pq),
                               ("exact floats vs lossless Parquet", t_exact, t_pq32, f_exact, f_pq32)):
        target(f"load ({variant}), {what}, in turns in one process", ">= 1.5x", f"{tp / t:.2f}x", tp / t >= 1.5)
        target(f"load ({variant}), {what}, first load in a fresh process", ">= 1.5x", f"{fp / f:.2f}x",
               fp / f >= 1.5)
    return fig, rows


def bench_load() -> None:
    # Warm the process up first, over every variant: the allocator settles
    # its thresholds for the big output arrays only after a few rounds, and
    # whichever variant ran first would otherwise pay for that.
    for _ in range(2):
        for variant in OPT.variants:
            b = big_files(variant)
            load_ours(b["ours"])
            load_parquet(b["parquet"], b["parquet_cfg"])
    _per_variant("load", _load_variant,
                 f"Loading a {OPT.big:,}-record file into numpy columns (page cache warm; phase as codes + labels "
                 f"on both sides; floats as float32 on both sides, Parquet's quantized ints multiplied back).\n"
                 f"ms: median in turns in one process / median of each side's first load in a fresh process; "
                 f"MB/s of logical {workload.RECORD_BYTES}-byte records in turns",
                 ["variant", "what", "B/record", "ms in turns", "ms fresh", "MB/s", "ours faster by (turns / fresh)"])


QUERY_SPAN = 1000


def _query_variant(variant: str) -> tuple[dict, list]:
    b = big_files(variant)
    n, cols, path = b["n"], b["cols"], b["ours_exact"]
    ts = cols["timestamp"]
    lo = n // 2 - QUERY_SPAN // 2
    start, end = int(ts[lo]), int(ts[lo + QUERY_SPAN])
    want = {k: v[lo:lo + QUERY_SPAN] for k, v in cols.items()}

    def open_query():
        with Chronicle.open(path) as c:
            return c.query_columns(start, end)

    with Chronicle.open(path) as ch:
        check_chronicle_numpy(ch.query_columns(start, end), want, "chronicle query", EXACT)
        got = ch.query_range(start, end)
        assert [r.timestamp for r in got] == want["timestamp"].tolist(), "query_range timestamps"
        assert [r.loss_value for r in got] == want["loss"].astype(np.float32).tolist(), "query_range loss"
        t_r, t_q, t_ts = interleaved_medians([lambda: ch.query_range(start, end), lambda: ch.query_columns(start, end),
                                              lambda: ch.query_columns(start, end, ["timestamp"])], 101)
    check_chronicle_numpy(open_query(), want, "chronicle open + query", EXACT)
    t_oq = median_seconds(open_query, 101)
    f_r, f_or = fresh_process_medians([("query_range", path, {}), ("open_query_range", path, {})], 7, start, end)
    rows = [
        [variant, "query_range -> 1,000 CycleRecords (file opened once)", f"{t_r * 1e3:.3f}"],
        [variant, "  first query_range in a fresh process (after open)", f"{f_r * 1e3:.3f}"],
        [variant, "  open + first query_range + close in a fresh process", f"{f_or * 1e3:.3f}"],
        [variant, "query_columns -> numpy columns (file opened once)", f"{t_q * 1e3:.3f}"],
        [variant, "  only the timestamp column", f"{t_ts * 1e3:.3f}"],
        [variant, "Chronicle.open + query_columns + close", f"{t_oq * 1e3:.3f}"],
    ]
    fig = {"query_range_ms": t_r * 1e3, "query_range_fresh_ms": f_r * 1e3, "open_query_range_fresh_ms": f_or * 1e3,
           "query_columns_ms": t_q * 1e3, "query_timestamp_only_ms": t_ts * 1e3, "open_query_ms": t_oq * 1e3,
           "records": QUERY_SPAN, "first_index": lo, "file": "exact floats"}
    target(f"query ({variant}): query_range of {QUERY_SPAN} records from the middle, fresh process", "< 2 ms",
           f"{f_r * 1e3:.2f} ms ({t_r * 1e3:.2f} ms once warm)", f_r < 2e-3)
    return fig, rows


def bench_query() -> None:
    _per_variant("query", _query_variant,
                 f"Range query of {QUERY_SPAN:,} consecutive records from the middle of the {OPT.big:,}-record "
                 f"file, exact floats (median ms)", ["variant", "what", "ms"])


def _verify_variant(variant: str) -> tuple[dict, list]:
    p = big_files(variant)["ours_exact"]
    size = os.path.getsize(p)
    p.read_bytes()      # into the page cache
    rep = verify(p)
    assert rep.ok, rep.text()
    t_v = median_seconds(lambda: verify(p), 9)
    t_crc = median_seconds(lambda: core.crc64_file(p), 9)
    rows = [
        [variant, "verify (every checksum)", f"{size / 1e6:.0f}", f"{t_v * 1e3:.1f}", f"{size / t_v / 1e9:.2f}",
         f"{t_v / t_crc:.2f}"],
        [variant, "core.crc64_file of the whole file (ceiling)", f"{size / 1e6:.0f}", f"{t_crc * 1e3:.1f}",
         f"{size / t_crc / 1e9:.2f}", "1.00"],
    ]
    fig = {"bytes": size, "verify_seconds": t_v, "verify_GBps": size / t_v / 1e9,
           "crc64_file_GBps": size / t_crc / 1e9}
    target(f"verify ({variant}), file in the page cache", ">= 5 GB/s", f"{size / t_v / 1e9:.2f} GB/s",
           size / t_v >= 5e9)
    return fig, rows


def bench_verify() -> None:
    _per_variant("verify", _verify_variant,
                 f"verify() of the {OPT.big:,}-record file, in the page cache (GB/s of file size; "
                 f"'time / crc' = verify time / one CRC-64 pass over the file)",
                 ["variant", "what", "MB", "ms", "GB/s", "time / crc"])


SECTIONS = {"size": bench_size, "append": bench_append, "load": bench_load, "query": bench_query,
            "verify": bench_verify}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    ap.add_argument("--n", type=int, default=workload.DEFAULT_N,
                    help="records for size and extend (default 1,000,000); per-record append uses min(200,000, n)")
    ap.add_argument("--big", type=int, default=10_000_000, help="records in the file for load/query/verify")
    ap.add_argument("--variants", nargs="+", choices=workload.VARIANTS, default=["ms", "seq"])
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.n < 2000 or args.big < 2000:
        ap.error("--n and --big must be at least 2000")
    OPT.n, OPT.big, OPT.variants = args.n, args.big, tuple(args.variants)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_chronicle_") as tmp:
        OPT.workdir = Path(tmp)
        for name in args.sections or SECTIONS:
            SECTIONS[name]()
    target.report(RESULTS, args.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
