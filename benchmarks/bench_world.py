"""A persisted dry run of the world against a Mesa model of the same agents
and ticks with a trivial step, in one process.

    python benchmarks/bench_world.py                      # 10,000 agents, 7 days of 12 hourly ticks
    python benchmarks/bench_world.py --agents 2000 --days 2

Ours: ``chronoledger.world.scheduler.run`` with the offline model, writing
every event, conversation, turn, memory, relationship change and stay to
SQLite and every event and model response to the run's chronicle, with a
checkpoint after every tick and a report per day.  The agents are made up
(seeded) before the clock starts.  Mesa: a model whose agents' ``step``
does nothing, stepped the same number of ticks (``shuffle_do``): the floor
of an agent-based model in Python, with nothing stored.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, table  # noqa: E402

from chronoledger.world import store  # noqa: E402
from chronoledger.world.config import load_config  # noqa: E402
from chronoledger.world.models import make_model  # noqa: E402
from chronoledger.world.scheduler import RunOptions, ensure_agents, run  # noqa: E402

RESULTS: dict = {}
target = Targets()


def mesa_seconds(agents: int, steps: int) -> float | None:
    try:
        import mesa
    except ImportError:
        return None

    class Trivial(mesa.Agent):
        def step(self) -> None:
            pass

    class World(mesa.Model):
        def __init__(self, n: int):
            super().__init__(seed=0)
            for _ in range(n):
                Trivial(self)

        def step(self) -> None:
            self.agents.shuffle_do("step")

    model = World(agents)
    t = time.perf_counter()
    for _ in range(steps):
        model.step()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    config = load_config()
    ticks = config.ticks_per_day
    with tempfile.TemporaryDirectory(prefix="bench_world_") as tmp:
        db_file = Path(tmp) / "world.db"
        conn = store.connect(db_file)
        ensure_agents(conn, opt.agents, 0)
        conn.close()
        result = run(db_file, config, make_model("offline"),
                     RunOptions(days=opt.days, agents=opt.agents, seed=1, report_format="json", summary_only=True))
        size = db_file.stat().st_size + result.chronicle.stat().st_size
    ours = result.seconds
    agent_ticks = result.agent_ticks
    peer = mesa_seconds(opt.agents, opt.days * ticks)
    rows = [["chronoledger world run (offline model, persisted)", f"{ours:.2f}", f"{agent_ticks / ours:,.0f}",
             f"{result.events / ours:,.0f}", ""]]
    if peer is not None:
        rows.append(["Mesa, trivial step, nothing stored", f"{peer:.2f}", f"{agent_ticks / peer:,.0f}", "",
                     f"{peer / ours:.2f}x"])
    table(f"{opt.agents:,} agents, {opt.days} days of {ticks} ticks = {agent_ticks:,} agent-ticks; "
          f"{result.events:,} events, {result.conversations:,} conversations, {result.memories:,} memories, "
          f"{size / 1e6:,.0f} MB written",
          ["what", "seconds", "agent-ticks/s", "events/s", "ours / Mesa speed"], rows)
    RESULTS.update({"agents": opt.agents, "days": opt.days, "agent_ticks": agent_ticks, "seconds": ours,
                    "agent_ticks_per_s": agent_ticks / ours, "events_per_s": result.events / ours,
                    "mesa_seconds": peer})
    target("agent-ticks per second, persisted", ">= 100,000", f"{agent_ticks / ours:,.0f}", agent_ticks / ours >= 1e5)
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
