"""A multi-agent daily-life simulation: agents with personas live through
timeboxed days, move, talk, reflect and remember; every action is stored,
logged to a chronicle, and replayable (docs/world.md)."""

from chronoledger.world.actions import Action, register_action
from chronoledger.world.adopt import adopt_sandbox
from chronoledger.world.config import load_config, load_scenario, with_scenario
from chronoledger.world.models import make_model
from chronoledger.world import replay                 # the module: replay.replay(path), replay.ReplayReport
from chronoledger.world.scheduler import RunOptions, RunResult, resume, run

__all__ = ["Action", "RunOptions", "RunResult", "adopt_sandbox", "load_config", "load_scenario", "make_model",
           "register_action", "replay", "resume", "run", "with_scenario"]
