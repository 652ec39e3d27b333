"""One of several processes driving LangGraph graphs on one runtime database
(tests/test_runtime_langgraph.py): ``python _langgraph_worker.py DB WORKER RUNS``."""

import operator
import sys
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from chronoledger.runtime.langgraph import ChronoledgerSaver


class State(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


def main(db: str, worker: str, runs: int) -> None:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"count": s["count"] + 1, "log": [f"{worker}:a{s['count']}"]})
    g.add_node("b", lambda s: {"log": [f"{worker}:b{s['count']}"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    with ChronoledgerSaver(db) as saver:
        graph = g.compile(checkpointer=saver)
        for r in range(runs):
            for thread in (f"own-{worker}", f"turn-{worker}-{r % 3}"):
                config = {"configurable": {"thread_id": thread}}
                count = graph.get_state(config).values.get("count", 0)
                graph.invoke({"count": count}, config)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
