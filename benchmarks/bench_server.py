"""A load test of ``chronoledger serve`` on 127.0.0.1: concurrent clients
reading and writing for a while, every error counted, every acknowledged
write read back, latency percentiles reported.

    python benchmarks/bench_server.py                      # 50 clients for 30 s over the demo's files
    python benchmarks/bench_server.py --clients 100 --seconds 60 --json out.json

The server is the command itself (``chronoledger serve``, one uvicorn
process, started on a free port before the clock); the clients are one
asyncio process (httpx), each running a mix: 30 % inserts into a table of
the registry (token), 70 % reads spread over the API (table rows, the trend
metrics, a world timeline, a run's thinned series, runtime sessions, an SQL
count on the mirrors).  A write counts once the server answered 201 with
the row; at the end every such row must be there (0 lost writes) and no
request may have failed (0 errors).  tests/test_server_load.py runs it in
the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, table  # noqa: E402

from chronoledger import demo  # noqa: E402

TABLE = "memory_business_intelligence"
READS = ("/api/tables/" + TABLE + "/rows?limit=20", "/api/trends/metrics", "/api/world/timeline",
         "/api/runs/learner.cmeta/series?metrics=loss_value&points=500", "/api/runtime/sessions?limit=20",
         "/api/data/query?sql=SELECT+count(*)+FROM+completions")


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)      # "read" / "write" -> seconds
    acknowledged: list[str] = field(default_factory=list)                # ids of the rows the server stored
    lost: list[str] = field(default_factory=list)

    def percentile(self, kind: str, q: float) -> float:
        values = self.latencies.get(kind) or [0.0]
        return float(np.percentile(values, q))

    def as_dict(self) -> dict:
        every = [x for v in self.latencies.values() for x in v] or [0.0]
        return {"clients": self.clients, "seconds": self.seconds, "requests": self.requests,
                "requests_per_s": self.requests / self.seconds, "errors": len(self.errors),
                "first_errors": self.errors[:5], "writes": len(self.acknowledged), "lost_writes": len(self.lost),
                "p50_ms": float(np.percentile(every, 50)) * 1e3, "p99_ms": float(np.percentile(every, 99)) * 1e3,
                "read_p99_ms": self.percentile("read", 99) * 1e3, "write_p99_ms": self.percentile("write", 99) * 1e3}


async def _client(k: int, http: httpx.AsyncClient, deadline: float, token: str, report: LoadReport) -> None:
    rng = random.Random(k)
    seq = 0
    while time.monotonic() < deadline:
        write = rng.random() < 0.3
        t0 = time.perf_counter()
        try:
            if write:
                seq += 1
                r = await http.post(f"/api/tables/{TABLE}/rows", json={"dashboard_name": f"load-{k}-{seq}",
                                                                      "category": "ops", "owner": f"client {k}"},
                                    headers={"Authorization": f"Bearer {token}"})
                ok = r.status_code == 201 and r.json().get("row", {}).get("dashboard_name") == f"load-{k}-{seq}"
                if ok:
                    report.acknowledged.append(r.json()["row"]["id"])
            else:
                r = await http.get(rng.choice(READS))
                ok = r.status_code == 200 and r.json().get("ok") is True
            if not ok:
                report.errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as exc:
            report.errors.append(f"client {k}: {type(exc).__name__}: {exc}")
        report.latencies.setdefault("write" if write else "read", []).append(time.perf_counter() - t0)
        report.requests += 1


async def _run(url: str, token: str, clients: int, seconds: float) -> LoadReport:
    report = LoadReport(clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_client(k, http, deadline, token, report) for k in range(clients)))
        # every acknowledged write is there, read back one by one, and nothing else was written
        for rid in report.acknowledged:
            r = await http.get(f"/api/tables/{TABLE}/rows/{rid}")
            if r.status_code != 200:
                report.lost.append(rid)
        where = json.dumps({"dashboard_name": {"like": "load-%"}})
        seen, offset = 0, 0
        while True:
            page = (await http.get(f"/api/tables/{TABLE}/rows", params={"where": where, "limit": 1000,
                                                                        "offset": offset})).json()
            seen += len(page["rows"])
            if page["next_offset"] is None:
                break
            offset = page["next_offset"]
        if seen != len(report.acknowledged):
            report.errors.append(f"{seen} load rows in the table, {len(report.acknowledged)} acknowledged")
    return report


def load(url: str, token: str, clients: int = 50, seconds: float = 30.0) -> LoadReport:
    """``clients`` concurrent clients against the server at ``url`` for ``seconds``."""
    return asyncio.run(_run(url, token, clients, seconds))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(args: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """``chronoledger serve ARGS`` on a free port; (process, url) once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "chronoledger.cli", "serve", *args, "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/openapi.json", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"serve did not answer within 60 s: {log.read_text()}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    target = Targets()
    token = "bench-token-" + os.urandom(8).hex()
    with tempfile.TemporaryDirectory(prefix="bench_server_") as tmp:
        report_demo = demo.run(Path(tmp) / "demo", records=2000, cycles=200)
        facts = {s.name: s.facts for s in report_demo.sections}
        out = report_demo.out_dir
        args = ["--user", str(facts["sequence"]["user"]), "--tables", str(facts["tables"]["database"]),
                "--runtime", str(facts["runtime"]["database"]), "--world", str(facts["world"]["database"]),
                "--runs", str(out), "--token", token]
        proc, url = serve(args, Path(tmp) / "serve.log")
        try:
            report = load(url, token, opt.clients, opt.seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    d = report.as_dict()
    table(f"chronoledger serve under load: {opt.clients} clients for {opt.seconds:.0f} s on 127.0.0.1 "
          "(30 % writes)", ["requests", "per second", "p50 ms", "p99 ms", "read p99 ms", "write p99 ms", "errors",
                            "writes", "lost"],
          [[f"{d['requests']:,}", f"{d['requests_per_s']:,.0f}", f"{d['p50_ms']:.1f}", f"{d['p99_ms']:.1f}",
            f"{d['read_p99_ms']:.1f}", f"{d['write_p99_ms']:.1f}", str(d["errors"]), f"{d['writes']:,}",
            str(d["lost_writes"])]])
    for e in d["first_errors"]:
        print("  error:", e)
    target("errors under load", "0", str(d["errors"]), d["errors"] == 0)
    target("lost writes under load", "0", str(d["lost_writes"]), d["lost_writes"] == 0)
    target.report({"load": d}, opt.json, t0)
    return 0 if d["errors"] == 0 and d["lost_writes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
