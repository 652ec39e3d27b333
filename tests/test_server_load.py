"""``chronoledger serve`` under load on 127.0.0.1: 50 concurrent clients
reading and writing for 30 s (benchmarks/bench_server.py's load, bounded
in count and time): no error, no lost write; the latency percentiles are
printed, not asserted (speed is measured in benchmarks/, not here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from _server import TOKEN, Server, make_demo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_server import load  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def test_fifty_clients_for_thirty_seconds_without_an_error_or_a_lost_write(tmp_path, capsys):
    files = make_demo(tmp_path / "demo")
    server = Server([*files.serve_args(), "--token", TOKEN], tmp_path / "serve.log")
    try:
        report = load(server.url, TOKEN, clients=50, seconds=30)
    finally:
        server.stop()
    figures = report.as_dict()
    with capsys.disabled():
        print(f"\nserve under load: {figures['requests']:,} requests ({figures['requests_per_s']:.0f}/s), "
              f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, {figures['writes']:,} writes")
    assert report.errors == [], report.errors[:5]
    assert report.lost == []
    assert figures["writes"] > 0 and len(report.latencies["read"]) > figures["writes"]
