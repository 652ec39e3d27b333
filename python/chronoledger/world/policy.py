"""What every agent does in one tick, decided for all of them at once.

In order, each step taking the agents the steps before left free: trips
under way go on; appointments (agents due at a scripted meeting's place later
today leave in time); the tick's scripted events; the scenario's schedule
(a slot's place, and its action type once the agent is there); planned
activities elsewhere (a trip there); a social activity with company at hand
(a conversation); and for the rest, a weighted choice among the action types
each agent may take now (:meth:`chronoledger.world.actions.Action.allowed`),
each settled by its class (a move's destination, who pairs with whom, which
groups meet).  Moves are then admitted by each place's free capacity, first
come first served; a full place turns an agent away.

The decision changes the state's positions and counters (where agents are
and are going); what was said and what is written are the talk's and the
rows' (:mod:`chronoledger.world.talk`, :mod:`chronoledger.world.rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chronoledger.errors import ConfigError
from chronoledger.world import actions as act
from chronoledger.world.actions import Action, registered
from chronoledger.world.agents import topic
from chronoledger.world.config import PERIODS
from chronoledger.world.results import Chat, ScriptedOutcome, Stay
from chronoledger.world.state import WorldState


@dataclass
class Decision:
    """What a tick decided (positions of agents, codes of actions)."""
    day: int
    tick: int
    hour: int
    gmin: int                       # minutes since the run's first day began
    label: str                      # the day's label
    stamp: str                      # the tick's time, ISO
    micros: int                     # the tick's time, microseconds since 1970
    action: np.ndarray              # every agent's action code (actions.NONE: none)
    activity: np.ndarray            # every agent's activity (index)
    move_to: np.ndarray             # every agent: the place it set out for, or -1
    refused_at: np.ndarray          # every agent: the full place that turned it away, or -1
    partner: np.ndarray             # every agent: its duo chat's other member, or -1 (set by the talk)
    conv_of: np.ndarray             # every agent: its conversation's id, or -1 (set by the talk)
    chats: list[Chat]
    reflect: np.ndarray             # the agents reflecting (a model request each)
    prompts: dict[int, str]         # agent -> the scripted prompt it answers
    stays: list[Stay]               # stays that ended this tick
    outcomes: list[ScriptedOutcome]
    view: act.ActionView            # what the actions read (registered ones' rows and memories)
    topics: list[str] = field(default_factory=list)     # what each chat is about
    custom: list[tuple[Action, np.ndarray]] = field(default_factory=list)   # registered actions and who took them


class _View:
    """What the action classes read of a tick (actions.ActionView)."""

    def __init__(self, s: WorldState, hour: int, can_move: np.ndarray, cooled: np.ndarray):
        self.loc = s.loc
        self.best_friend = s.best_friend
        self.open_now = np.flatnonzero(s.env.open_at[hour])
        self.can_move = can_move
        self.cooled = cooled
        self.at_home = s.loc == s.env.home
        self.place_names = s.env.names


class TickPolicy:
    """Decides ticks of one run's state (see the module's notes)."""

    def __init__(self, state: WorldState):
        self.s = state
        self.actions = registered()
        if tuple(a.name for a in self.actions) != state.action_names:
            raise ConfigError("the registered actions changed while the run was being set up; register actions "
                              "before a run starts")

    def decide(self, day: int, tick: int) -> Decision:
        s = self.s
        cfg, env, rng = s.cfg, s.env, s.rng
        n = len(s.agents)
        hour = cfg.tick_hour(tick)
        gmin = s.gmin(day, tick)
        stamp, micros = s.stamp(day, tick)
        rails = cfg.guardrails
        names = s.agents.names

        # trips under way advance; arrivals are free this tick
        travelling = s.travel_left > 0
        s.travel_left[travelling] -= 1
        arrived = travelling & (s.travel_left == 0)
        stays: list[Stay] = []
        if arrived.any():
            a = np.flatnonzero(arrived)
            s.loc[a] = s.dest[a]
            s.dest[a] = -1
            s.stay_since[a] = gmin
        action = np.full(n, act.NONE, dtype=np.int64)
        free = (s.travel_left == 0) & (s.actions_today < rails["max_actions_per_agent_per_day"])
        activity = s.plan[:, PERIODS.index(cfg.period(hour))].copy()
        move_to = np.full(n, -1, dtype=np.int64)
        refused_at = np.full(n, -1, dtype=np.int64)       # a full place that turned the agent away
        prompts: dict[int, str] = {}

        # appointments: agents due at a scripted meeting's place later today leave in time to be there
        # and, once there, wait for it (they still talk, reflect and work, but do not wander off)
        pinned = np.zeros(n, dtype=bool)
        for ev in s.scripted.get(("day", day), []) + s.scripted.get(("day", None), []):
            if ev["tick"] <= tick or ev["type"] not in ("duo_chat", "group_meeting"):     # chats have a place
                continue
            place = s.event_place(ev)
            m = np.array(ev["agents"], dtype=np.int64)
            m = m[free[m]]
            pinned[m[s.loc[m] == place]] = True
            away = m[s.loc[m] != place]
            due = away[ev["tick"] - tick <= env.travel_ticks[s.loc[away], place]]
            action[due] = act.MOVE
            move_to[due] = place
            free[due] = False

        # scripted events of this tick go first; what became of each goes to the day's report
        forced_groups: list[Chat] = []
        outcomes: list[ScriptedOutcome] = []
        for ev in s.scripted.get((day, tick), []) + s.scripted.get((None, tick), []):
            members = np.array([i for i in ev["agents"] if free[i]], dtype=np.int64)
            busy = [names[i] for i in ev["agents"] if not free[i]]
            outcome: ScriptedOutcome = {"tick": tick, "type": ev["type"], "agents": [names[i] for i in ev["agents"]],
                                        "location": ev["location"], "prompt": ev["prompt"], "held": False,
                                        "took_part": [], "away": [], "busy": busy, "turned_away": []}
            outcomes.append(outcome)
            if len(members) == 0:
                continue
            kind = s.action_names.index(ev["type"])
            free[members] = False
            if kind == act.MOVE:                                 # a move has a place (config checks it)
                place = s.event_place(ev)
                there = s.loc[members] == place
                action[members[there]] = act.TASK                # already there: no trip
                action[members[~there]] = act.MOVE
                move_to[members[~there]] = place
                outcome["held"], outcome["took_part"] = True, [names[i] for i in members.tolist()]
            elif kind in (act.DUO, act.GROUP) and len(members) >= 2:
                # a meeting at its place; who is still elsewhere (late, or turned away) goes there
                place = s.event_place(ev)
                away = members[s.loc[members] != place]
                action[away] = act.MOVE
                move_to[away] = place
                outcome["away"] = [names[i] for i in away.tolist()]
                members = members[s.loc[members] == place]
                outcome["took_part"] = [names[i] for i in members.tolist()]
                if len(members) >= 2:
                    forced_groups.append((members, kind, ev.get("prompt")))
                    action[members] = kind
                    outcome["held"] = True
                else:
                    action[members] = act.REFLECT
            else:
                outcome["held"], outcome["took_part"] = True, [names[i] for i in members.tolist()]
                action[members] = kind
                for i in members:
                    prompts[int(i)] = ev.get("prompt") or ""
            activity[members] = s.scripted_activity(ev, members, hour, activity[members])

        # planned activity elsewhere: go there (if it is open and the day's travel allows); a scenario's
        # schedule names both the activity and the place
        target = s.act_loc[activity]
        if hour in s.overrides:
            who, what, where, doing, slot = s.overrides[hour]
            keep = free[who]
            activity[who[keep]] = what[keep]
            target[who[keep]] = where[keep]
            # a slot's action type, done once the agent is at the slot's place (a chat or a meeting with
            # whoever else is there for one; alone, it is a reflection), once a day
            now = keep & (doing != act.NONE) & (s.loc[who] == where) & (s.slot_done[slot] != day)
            action[who[now]] = doing[now]
            free[who[now]] = False
            s.slot_done[slot[now]] = day
        can_move = (s.moves_today < rails["max_location_travel_per_day"]) & ~pinned
        goes = free & (s.loc != target) & env.open_at[hour][target] & can_move
        action[goes] = act.MOVE
        move_to[goes] = target[goes]
        free &= ~goes

        # a social activity with company at hand is a conversation: agents at the place of a social
        # activity they have planned, with another such agent there, talk (paired below)
        cooled = gmin - s.last_chat >= rails["min_cooldown_between_duo_chats_minutes"]
        social_here = free & s.act_social[activity] & (s.loc == target) & cooled
        if social_here.any():
            at = s.loc[social_here]
            company = np.bincount(at, minlength=len(env.names))[at] >= 2
            talkers = np.flatnonzero(social_here)[company]
            action[talkers] = act.DUO
            free[talkers] = False

        # the rest choose by weights, among the action types each may take now
        view = _View(s, hour, can_move, cooled)
        rest = np.flatnonzero(free)
        if len(rest):
            allowed = np.column_stack([act.checked_allowed(a, view, rest) for a in self.actions]).astype(np.float64)
            weights = np.array([cfg.action_weights[a.name] for a in self.actions])
            action[rest] = act.choose(rng, weights, allowed)
            movers = rest[action[rest] == act.MOVE]
            if len(movers):                      # somewhere open and elsewhere
                moved = self.actions[act.MOVE].settle(view, rng, movers)
                if moved.to is not None:
                    move_to[moved.done] = moved.to
                self._instead(action, moved.instead)

        # duo chats in pairs at one place, groups of 3-6: the chat classes settle who talks with whom
        scripted_members = np.concatenate([g[0] for g in forced_groups]) if forced_groups else np.zeros(0, np.int64)
        duo = self.actions[act.DUO].settle(view, rng, np.setdiff1d(np.flatnonzero(action == act.DUO),
                                                                   scripted_members))
        self._instead(action, duo.instead)
        grp = self.actions[act.GROUP].settle(view, rng, np.setdiff1d(np.flatnonzero(action == act.GROUP),
                                                                     scripted_members))
        self._instead(action, grp.instead)
        chats: list[Chat] = forced_groups + [(p, act.DUO, None) for p in duo.groups] + \
            [(g, act.GROUP, None) for g in grp.groups]
        # registered actions settle last, each on those who chose it
        custom = []
        for code in range(len(act.BUILT_IN), len(self.actions)):
            chose = np.flatnonzero(action == code)
            if len(chose):
                settled = act.checked_settled(self.actions[code], self.actions[code].settle(view, rng, chose), chose)
                self._instead(action, settled.instead)
                custom.append((self.actions[code], settled.done))
        # max_concurrent_chats bounds the model calls in flight (the model's own queue), never what
        # happens: the same seed gives the same world whatever the cap (the plan: "--max-concurrent-chats N
        # to bound simultaneous LLM calls")

        # moves: capacity first come first served, trips take ticks
        movers = np.flatnonzero(action == act.MOVE)
        if len(movers):
            ok = env.admit(movers, move_to, env.occupancy(s.loc, s.dest))
            blocked = movers[~ok]
            action[blocked] = act.TASK
            refused_at[blocked] = move_to[blocked]
            move_to[blocked] = -1                       # turned away: still where it was
            movers = movers[ok]
            origin = s.loc[movers].copy()
            dest = move_to[movers]
            ticks = env.travel_ticks[origin, dest]
            for a, o, since in zip(movers.tolist(), origin.tolist(), s.stay_since[movers].tolist()):
                stays.append((a, o, since))
            s.moves_today[movers] += 1
            now_there = ticks == 0
            s.loc[movers[now_there]] = dest[now_there]
            s.stay_since[movers[now_there]] = gmin
            s.dest[movers[~now_there]] = dest[~now_there]
            s.travel_left[movers[~now_there]] = ticks[~now_there]

        for outcome in outcomes:                 # a scripted move a full place refused did not happen
            if outcome["type"] == "move":
                outcome["turned_away"] = [m for m in outcome["took_part"] if refused_at[s.agents.index[m]] >= 0]
                outcome["held"] = outcome["held"] and not outcome["turned_away"]
        return Decision(day, tick, hour, gmin, s.day_label(day), stamp, micros, action, activity, move_to, refused_at,
                        np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), chats,
                        np.flatnonzero(action == act.REFLECT), prompts, stays, outcomes, view,
                        [topic(s.agents, members.tolist()) for members, _, _ in chats], custom)

    @staticmethod
    def _instead(action: np.ndarray, instead: list[tuple[np.ndarray, int]]) -> None:
        for who, code in instead:
            action[who] = code

    def after(self, d: Decision) -> None:
        """The counters a tick's decision moves once its conversations are had."""
        s = self.s
        for members, kind, _ in d.chats:
            if kind == act.DUO:
                s.last_chat[members] = d.gmin
        s.actions_today[d.action != act.NONE] += 1
