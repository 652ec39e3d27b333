"""A LangGraph graph whose checkpoints live in the runtime memory database.

    pip install 'chronoledger[langgraph]'
    python examples/langgraph_agent.py [DB]

The graph counts and keeps a log; run it twice and the second run carries on
from the first (the thread's state is in the file).  The thread is a session
of the runtime store, so `chronoledger runtime sessions DB` lists it.
"""

import operator
import sys
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from chronoledger.runtime.langgraph import ChronoledgerSaver


class State(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


def step(state: State) -> dict:
    n = state["count"] + 1
    return {"count": n, "log": [f"step {n}"]}


def build():
    g = StateGraph(State)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_edge("step", END)
    return g


def main(db: str = "langgraph_runtime.sqlite") -> dict:
    with ChronoledgerSaver(db) as saver:
        graph = build().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "counter"}}
        before = graph.get_state(config).values
        out = graph.invoke({"count": before.get("count", 0)}, config)
        history = list(graph.get_state_history(config))
        print(f"count {out['count']}, log {out['log']}, {len(history)} checkpoints, "
              f"session {saver.session_id('counter')}")
        return out


if __name__ == "__main__":
    main(*sys.argv[1:2])
