"""Side-by-side measurements of the compiled core against the tools a user
would pick instead, in one process, on the same data; prints ratio tables.

    python benchmarks/compare_peers.py            # everything (about a minute)
    python benchmarks/compare_peers.py crc codec  # some sections
    python benchmarks/compare_peers.py --json out.json

Peers: fastcrc (Rust) and anycrc (C) and crcmod for CRC-64/XZ; pyarrow
Parquet (quantized ints, DELTA_BINARY_PACKED, zstd) for the column codec;
list.append and an SQLite (apsw) row insert for per-record appends.  Each
figure is the median of several repeats, after a warm-up.  Install the peers with
``pip install '.[bench]'``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from typing import Callable

import numpy as np

from chronoledger import core, workload

RESULTS: dict[str, dict] = {}


def median_seconds(fn: Callable[[], object], repeat: int, number: int = 1) -> float:
    times = []
    fn()  # warm up: page faults, caches, lazy imports
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def interleaved_medians(fns: list[Callable[[], object]], repeat: int,
                        before: Callable[[], object] | None = None) -> list[float]:
    """Median seconds of each function, timed in turns (a, b, c, a, b, c...)
    so that a change in the machine's speed during the run (frequent on a
    shared VM) falls on every side of a ratio alike.  ``before`` runs,
    untimed, before every call (e.g. ``os.sync``, so that no side's timing
    includes the writeback of what the previous one left dirty)."""
    for fn in fns:
        fn()  # warm up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


class Targets:
    """The targets a benchmark run checks, printed (and saved) at the end."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def __call__(self, what: str, goal: str, figure: str, met: bool) -> None:
        self.rows.append([what, goal, figure, "met" if met else "MISSED"])

    def report(self, results: dict, json_path: str | None, started: float) -> None:
        if self.rows:
            table("Targets", ["what", "target", "figure", ""], self.rows)
        print(f"\n({time.perf_counter() - started:.0f} s)")
        results["targets"] = [dict(zip(("what", "target", "figure", "status"), t)) for t in self.rows]
        if json_path:
            with open(json_path, "w", encoding="utf-8") as fh:
                json.dump(results, fh, indent=2, default=str)


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


# ---------------------------------------------------------------------------

def bench_crc() -> None:
    import anycrc
    import crcmod
    import fastcrc

    any_xz = anycrc.Model("CRC64-XZ")
    crcmod_xz = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
    peers = {
        "chronoledger": core.crc64,
        "fastcrc": fastcrc.crc64.xz,
        "anycrc": any_xz.calc,
        "crcmod": crcmod_xz,
    }
    rng = np.random.default_rng(1)
    out = {}
    rows = []
    for label, size, number, repeat in (("64 MiB", 64 << 20, 1, 15), ("1 MiB", 1 << 20, 20, 15),
                                        ("64 B", 64, 20000, 15)):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        expected = core.crc64(data)
        fig = {}
        for name, fn in peers.items():
            if name == "crcmod" and size > (1 << 20):
                number_, repeat_ = 1, 3
            else:
                number_, repeat_ = number, repeat
            assert fn(data) == expected, name

            def loop(fn=fn, data=data, r=range(number_)):
                for _ in r:     # no lambda layer per call: small buffers measure the call itself
                    fn(data)

            fig[name] = median_seconds(loop, repeat_) / number_
        out[label] = {k: {"seconds": v, "GB/s": size / v / 1e9, "ns/call": v * 1e9} for k, v in fig.items()}
        ours = fig["chronoledger"]
        for name, t in fig.items():
            rows.append([label, name, f"{size / t / 1e9:8.2f}", f"{t * 1e9:12.1f}",
                         "" if name == "chronoledger" else f"{t / ours:6.2f}x"])
    # the memory-read ceiling on this machine
    big = np.frombuffer(rng.integers(0, 256, 64 << 20, dtype=np.uint8).tobytes(), dtype=np.uint64)
    t = median_seconds(lambda: np.bitwise_xor.reduce(big), 15)
    out["memory read (numpy xor-reduce, 64 MiB)"] = {"GB/s": big.nbytes / t / 1e9}
    rows.append(["64 MiB", "numpy xor-reduce (ceiling)", f"{big.nbytes / t / 1e9:8.2f}", f"{t * 1e9:12.1f}", ""])
    table(f"CRC-64/XZ (path: {core.crc64_impl()}); 'ours faster by' = peer time / our time",
          ["buffer", "implementation", "GB/s", "ns/call", "ours faster by"], rows)
    RESULTS["crc64"] = out


# ---------------------------------------------------------------------------

_int_columns = workload.integer_columns   # the same columns for both codecs




def ours_encode(cols: dict[str, np.ndarray], threads: int | None = None) -> dict[str, bytes]:
    """quantize + delta + pack + zstd, column by column, from the raw floats."""
    return core.encode_columns(_int_columns(cols), threads=threads)


def ours_decode(enc: dict[str, bytes], threads: int | None = None) -> dict[str, np.ndarray]:
    return core.decode_columns(enc, threads=threads)


def parquet_encode(q: dict[str, np.ndarray], level: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {k: pa.array(v) for k, v in q.items() if k != "action_code"}
    present = q["action_code"] > 0
    arrays["action_code"] = pa.array(q["action_code"] - 1, mask=~present)  # a real nullable u8
    tab = pa.table(arrays)
    buf = io.BytesIO()
    pq.write_table(tab, buf, use_dictionary=False, compression="zstd", compression_level=level,
                   column_encoding={k: "DELTA_BINARY_PACKED" for k in arrays})
    return buf.getvalue()


def parquet_decode(data: bytes, threads: bool = True) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    tab = pq.read_table(io.BytesIO(data), use_threads=threads)
    return {name: tab.column(name).to_numpy() for name in tab.column_names}


def bench_codec() -> None:
    n = workload.DEFAULT_N
    logical = workload.RECORD_BYTES * n
    out = {}
    rows = []
    data = {variant: workload.generate(n, variant) for variant in workload.VARIANTS}
    # Warm the process up first: the allocator settles its thresholds for
    # multi-megabyte arrays only after a few rounds, and whichever variant
    # ran first would otherwise pay for that.
    for _ in range(3):
        for cols in data.values():
            ours_decode(ours_encode(cols))
            ours_decode(ours_encode(cols, threads=1), threads=1)
            parquet_decode(parquet_encode(_int_columns(cols), 1))
    for variant, cols in data.items():
        q = _int_columns(cols)
        enc = ours_encode(cols)
        dec = ours_decode(enc)
        for k, v in q.items():
            assert np.array_equal(dec[k], v), k
        ours_bytes = sum(len(v) for v in enc.values())
        t_enc = median_seconds(lambda: ours_encode(cols), 9)
        t_dec = median_seconds(lambda: ours_decode(enc), 9)
        t_enc1 = median_seconds(lambda: ours_encode(cols, threads=1), 9)
        t_dec1 = median_seconds(lambda: ours_decode(enc, threads=1), 9)
        best = None
        for level in (1, 3):
            pbytes = parquet_encode(q, level)
            if best is None or len(pbytes) < len(best[1]):
                best = (level, pbytes)
        level, pbytes = best
        back = parquet_decode(pbytes)
        assert np.array_equal(back["loss"], q["loss"])
        p_enc = median_seconds(lambda: parquet_encode(q, level), 9)
        p_dec = median_seconds(lambda: parquet_decode(pbytes), 9)
        p_dec1 = median_seconds(lambda: parquet_decode(pbytes, threads=False), 9)
        raw_rows = workload.pack_records(cols).tobytes()
        import zstandard
        zraw = len(zstandard.ZstdCompressor(level=3).compress(raw_rows))
        fig = {
            "ours_bytes_per_record": ours_bytes / n, "parquet_bytes_per_record": len(pbytes) / n,
            "zstd3_raw_rows_bytes_per_record": zraw / n,
            "bytes_ratio": ours_bytes / len(pbytes),
            "ours_encode_MBps": logical / t_enc / 1e6, "parquet_encode_MBps": logical / p_enc / 1e6,
            "ours_decode_MBps": logical / t_dec / 1e6, "parquet_decode_MBps": logical / p_dec / 1e6,
            "ours_encode_1thread_MBps": logical / t_enc1 / 1e6,
            "ours_decode_1thread_MBps": logical / t_dec1 / 1e6,
            "parquet_decode_1thread_MBps": logical / p_dec1 / 1e6,
            "parquet_zstd_level": level,
            "columns_bytes_per_record": {k: len(v) / n for k, v in enc.items()},
        }
        fig["encode_speedup"] = fig["ours_encode_MBps"] / fig["parquet_encode_MBps"]
        fig["decode_speedup"] = fig["ours_decode_MBps"] / fig["parquet_decode_MBps"]
        fig["encode_speedup_1thread"] = fig["ours_encode_1thread_MBps"] / fig["parquet_encode_MBps"]
        fig["decode_speedup_1thread"] = fig["ours_decode_1thread_MBps"] / fig["parquet_decode_1thread_MBps"]
        out[variant] = fig
        rows.append([variant, f"{fig['ours_bytes_per_record']:.3f}", f"{fig['parquet_bytes_per_record']:.3f}",
                     f"{fig['bytes_ratio']:.4f}x",
                     f"{fig['ours_encode_MBps']:.0f} / {fig['parquet_encode_MBps']:.0f}",
                     f"{fig['encode_speedup']:.2f}x ({fig['encode_speedup_1thread']:.2f}x)",
                     f"{fig['ours_decode_MBps']:.0f} / {fig['parquet_decode_MBps']:.0f}",
                     f"{fig['decode_speedup']:.2f}x ({fig['decode_speedup_1thread']:.2f}x)",
                     f"{fig['zstd3_raw_rows_bytes_per_record']:.2f}"])
    table(f"Column codec on the standard workload, n = {n:,}: logical MB/s of {workload.RECORD_BYTES}-byte records, "
          "both sides on every core (in brackets: one thread each; Parquet writes with one anyway).\n"
          "Ours includes quantizing the floats; Parquet is handed the quantized ints.",
          ["variant", "ours B/rec", "parquet B/rec", "bytes ours/pq", "encode MB/s ours/pq", "enc speedup",
           "decode MB/s ours/pq", "dec speedup", "zstd-3 raw B/rec"], rows)
    RESULTS["codec"] = out


# ---------------------------------------------------------------------------

def bench_append() -> None:
    import apsw

    n = 1_000_000
    ts = list(range(n))

    def ours():
        buf = core.AppendBuffer(flush_every=65536)
        append = buf.append
        for t in ts:
            append(t)
        return buf

    def ours_sink():
        buf = core.AppendBuffer(flush_every=65536, sink=lambda t, p: None)
        append = buf.append
        for t in ts:
            append(t)
        return buf

    def plain_list():
        lst = []
        append = lst.append
        for t in ts:
            append((t, t))
        return lst

    con = apsw.Connection(":memory:")
    con.execute("create table r(ts integer, payload integer)")

    def sqlite_rows():
        con.execute("delete from r")
        with con:
            ex = con.execute
            for t in ts[:200_000]:
                ex("insert into r values (?, ?)", (t, t))

    t_ours = median_seconds(ours, 7) / n
    t_sink = median_seconds(ours_sink, 7) / n
    t_list = median_seconds(plain_list, 7) / n
    t_sql = median_seconds(sqlite_rows, 3) / 200_000
    big = np.arange(10_000_000, dtype=np.uint64)

    def batch():
        buf = core.AppendBuffer(flush_every=65536)
        buf.extend(big)
        buf.flush()
        return buf.take()

    t_batch = median_seconds(batch, 9)
    rows = [
        ["AppendBuffer.append (no sink)", f"{t_ours * 1e9:.1f}", ""],
        ["AppendBuffer.append (with a sink)", f"{t_sink * 1e9:.1f}", ""],
        ["list.append of a new tuple", f"{t_list * 1e9:.1f}", f"{t_list / t_ours:.2f}x"],
        ["SQLite row insert (apsw, one transaction)", f"{t_sql * 1e9:.1f}", f"{t_sql / t_ours:.2f}x"],
        ["AppendBuffer.extend + flush + take (10M numpy)", f"{t_batch / big.size * 1e9:.2f}",
         f"{big.size / t_batch / 1e6:.0f} M records/s"],
    ]
    table("Appending records from Python (ns per record)", ["what", "ns/record", "peer time / ours"], rows)
    RESULTS["append"] = {"append_ns": t_ours * 1e9, "append_with_sink_ns": t_sink * 1e9,
                         "list_append_ns": t_list * 1e9, "sqlite_insert_ns": t_sql * 1e9,
                         "batch_records_per_s": big.size / t_batch}


SECTIONS = {"crc": bench_crc, "codec": bench_codec, "append": bench_append}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    for name in args.sections or SECTIONS:
        SECTIONS[name]()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(RESULTS, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
