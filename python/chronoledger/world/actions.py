"""What agents do in a tick: one class per kind of action, for all agents at once.

The plan's five action types are classes -- :class:`MoveAction`,
:class:`SoloReflectionAction`, :class:`DuoChatAction`,
:class:`GroupStandupAction` (``group_meeting``) and :class:`TaskUpdateAction`
-- that each own three things: which agents may take the action now
(:meth:`Action.allowed`, the eligibility the weighted choice respects), what
taking it settles (:meth:`Action.settle`: where a move goes, who pairs with
whom, which groups meet) and what it leaves in the world's rows
(:meth:`Action.event_meta` for its world_events rows, and
:meth:`Action.remember` for a memory of it).  The scheduler stays vectorized:
each method takes the positions of every agent concerned, never one agent.

A user registers an action of their own with :func:`register_action`; it is
then an action type like the others -- a config's ``action_weights`` and a
scenario's slots and events may name it, the day reports count it, and its
rows and memories are written and replayed (the replaying process registers
it too).  A registered action is solo: it calls no model (the built-in chats
and reflections are the conversations).  Example::

    class Nap(Action):
        name = "nap"

        def allowed(self, view, agents):            # only at home
            return view.at_home[agents]

        def remember(self, view, agents):
            return ["I had a nap." for _ in agents]

    register_action(Nap())

Every random choice draws from the run's one generator in a fixed order, so a
seed fixes the whole run.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Protocol

import numpy as np

from chronoledger.errors import ConfigError

__all__ = ["Action", "ActionView", "MoveAction", "SoloReflectionAction", "DuoChatAction", "GroupStandupAction",
           "TaskUpdateAction", "register_action", "registered", "action_names", "BUILT_IN"]

#: The plan's action types, in the order the scheduler numbers them.
BUILT_IN = ("move", "solo_reflection", "duo_chat", "group_meeting", "task_update")
MOVE, REFLECT, DUO, GROUP, TASK = range(len(BUILT_IN))
NONE = -1                 # no action this tick (travelling, or past the day's cap)
GROUP_MIN, GROUP_MAX = 3, 6


class ActionView(Protocol):
    """What an action may read of the world in a tick (the scheduler's state)."""
    loc: np.ndarray                 # every agent's place (index)
    best_friend: np.ndarray         # every agent's strongest relationship (position), or -1
    open_now: np.ndarray            # the places open in this hour (indices)
    can_move: np.ndarray            # every agent: within the day's travel allowance
    cooled: np.ndarray              # every agent: past the cooldown since its last duo chat
    at_home: np.ndarray             # every agent: at the place a run starts at
    place_names: list[str]


class Action:
    """One kind of action.  Subclass it (set ``name``) and override what
    differs; the defaults: any agent may take it, it settles nothing, its
    events carry no metadata, and it leaves no memory."""

    name: ClassVar[str] = ""
    #: its weight when a config's action_weights does not name it
    default_weight: ClassVar[float] = 0.0

    def allowed(self, view: ActionView, agents: np.ndarray) -> np.ndarray:
        """Which of ``agents`` may take it now, by weighted choice (a bool per agent)."""
        return np.ones(len(agents), dtype=bool)

    def settle(self, view: ActionView, rng: np.random.Generator, agents: np.ndarray) -> Settled:
        """What taking it means this tick for ``agents`` (those who chose
        it): see :class:`Settled`.  The default: they all do it."""
        return Settled(agents)

    def event_meta(self, view: ActionView, agents: np.ndarray) -> list[str] | None:
        """The world_events metadata (JSON text) of each of ``agents``, or None for none."""
        return None

    def remember(self, view: ActionView, agents: np.ndarray) -> list[str | None] | None:
        """What each of ``agents`` remembers of doing it (None: nothing), or None for no one."""
        return None

    def __repr__(self) -> str:
        return f"<action {self.name}>"


class Settled:
    """What choosing an action settled: ``done`` took it; ``instead`` are
    (agents, action code) that took another (a lone chatter reflects); for
    a move, ``to`` is each of ``done``'s destination; for a chat, ``groups``
    are who talks with whom."""

    def __init__(self, done: np.ndarray, *, instead: list[tuple[np.ndarray, int]] | None = None,
                 to: np.ndarray | None = None, groups: list[np.ndarray] | None = None):
        self.done = done
        self.instead = instead or []
        self.to = to
        self.groups = groups or []


class MoveAction(Action):
    """Go somewhere open and elsewhere, within the day's travel allowance (a
    full place turns the agent away: the scheduler admits moves by capacity)."""
    name = "move"

    def allowed(self, view: ActionView, agents: np.ndarray) -> np.ndarray:
        return view.can_move[agents]

    def settle(self, view: ActionView, rng: np.random.Generator, agents: np.ndarray) -> Settled:
        if not len(agents):
            return Settled(agents)
        pick = view.open_now[rng.integers(0, len(view.open_now), len(agents))]
        stay = pick == view.loc[agents]
        return Settled(agents[~stay], to=pick[~stay], instead=[(agents[stay], REFLECT)])


class SoloReflectionAction(Action):
    """A private thought, through the model; the thought is remembered."""
    name = "solo_reflection"


class DuoChatAction(Action):
    """Two agents at one place talk, through the model: mutual best friends
    first, then the rest at random; past the cooldown since the last chat.
    A lone one reflects instead."""
    name = "duo_chat"

    def allowed(self, view: ActionView, agents: np.ndarray) -> np.ndarray:
        return view.cooled[agents]

    def settle(self, view: ActionView, rng: np.random.Generator, agents: np.ndarray) -> Settled:
        pairs, single = pair_up(rng, agents, view.loc, view.best_friend)
        return Settled(pairs.ravel(), groups=list(pairs), instead=[(single, REFLECT)])


class GroupStandupAction(Action):
    """A meeting of three to six agents at one place (the plan's group
    standup: ``group_meeting``), through the model; too few at a place work
    on their tasks instead."""
    name = "group_meeting"

    def settle(self, view: ActionView, rng: np.random.Generator, agents: np.ndarray) -> Settled:
        groups, lone = form_groups(rng, agents, view.loc)
        done = np.concatenate(groups) if groups else agents[:0]
        return Settled(done, groups=groups, instead=[(lone, TASK)])


class TaskUpdateAction(Action):
    """Getting on with one's work where one is."""
    name = "task_update"


_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: The longest memory a registered action may give one agent, in characters.
MAX_MEMORY = 2000


def checked_allowed(action: Action, view: ActionView, agents: np.ndarray) -> np.ndarray:
    """``action.allowed(view, agents)``, checked: one bool per agent."""
    got = action.allowed(view, agents)
    arr = np.asarray(got) if isinstance(got, (np.ndarray, list, tuple)) else None
    if arr is None or arr.shape != (len(agents),) or arr.dtype.kind not in "bi":
        shown = f"shape {arr.shape}, dtype {arr.dtype}" if arr is not None else type(got).__name__
        raise ConfigError(f"action {action.name}: allowed() gave {shown}, not one bool per agent ({len(agents)})")
    return arr.astype(bool)


def checked_settled(action: Action, settled: Any, agents: np.ndarray) -> Settled:
    """``action.settle(...)``'s answer, checked: who did it and who did another action are among ``agents``."""
    if not isinstance(settled, Settled):
        raise ConfigError(f"action {action.name}: settle() gave a {type(settled).__name__}, not a Settled")
    done = np.asarray(settled.done)
    if done.ndim != 1 or (len(done) and (done.dtype.kind not in "iu" or not np.isin(done, agents).all())):
        raise ConfigError(f"action {action.name}: settle() names agents that did not choose it")
    for who, code in settled.instead:
        w = np.asarray(who)
        if w.ndim != 1 or (len(w) and (w.dtype.kind not in "iu" or not np.isin(w, agents).all())) or \
                not isinstance(code, int) or not 0 <= code < len(registered()):
            raise ConfigError(f"action {action.name}: settle() gave another action ({code!r}) to agents that did "
                              f"not choose it")
    return settled


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def checked_meta(action: Action, metas: Any, n: int) -> list[str] | None:
    """``action.event_meta(...)``'s answer, checked: None, or one JSON object (text) per agent."""
    if metas is None:
        return None
    if isinstance(metas, (str, bytes)) or not isinstance(metas, (list, tuple)) or len(metas) != n:
        got = f"a {type(metas).__name__}" + (f" of {len(metas)}" if isinstance(metas, (list, tuple)) else "")
        raise ConfigError(f"action {action.name}: event_meta() gave {got}, not a list of one JSON object per agent "
                          f"({n})")
    out = []
    for text in metas:
        try:
            value = json.loads(text, parse_constant=_no_constant) if isinstance(text, str) else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(f"action {action.name}: event_meta() gave {str(text)[:60]!r}, not a JSON object "
                              f"(text)")
        out.append(json.dumps(value, sort_keys=True))
    return out


def checked_memories(action: Action, said: Any, n: int) -> list[str | None]:
    """``action.remember(...)``'s answer, checked: None, or one text (or None) per agent, each UTF-8 and at most
    MAX_MEMORY characters."""
    if said is None:
        return [None] * n
    if isinstance(said, (str, bytes)) or not isinstance(said, (list, tuple)) or len(said) != n:
        got = f"a {type(said).__name__}" + (f" of {len(said)}" if isinstance(said, (list, tuple)) else "")
        raise ConfigError(f"action {action.name}: remember() gave {got}, not a list of one text (or None) per "
                          f"agent ({n})")
    for text in said:
        if text is None:
            continue
        if not isinstance(text, str):
            raise ConfigError(f"action {action.name}: remember() gave a {type(text).__name__}, not a text")
        if len(text) > MAX_MEMORY:
            raise ConfigError(f"action {action.name}: remember() gave a text of {len(text):,} characters (at most "
                              f"{MAX_MEMORY:,})")
        if "\x00" in text:
            raise ConfigError(f"action {action.name}: remember() gave a text with a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"action {action.name}: remember() gave a text that is not UTF-8 (a lone "
                              f"surrogate)") from None
    return list(said)


_BUILT_IN: tuple[Action, ...] = (MoveAction(), SoloReflectionAction(), DuoChatAction(), GroupStandupAction(),
                                 TaskUpdateAction())
_REGISTERED: list[Action] = []


def register_action(action: Action) -> None:
    """Make ``action`` an action type of every run from now on (numbered
    after the five built in, in the order registered).  Its name must be new
    and an identifier-like word (a ConfigError otherwise).  Register before
    a run starts: the actions of a run are fixed when it is set up."""
    name = getattr(action, "name", "")
    if not isinstance(action, Action) or not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"register_action: {action!r} is not an Action with a name of lower-case ASCII letters, "
                          f"digits and _ (starting with a letter)")
    if name in action_names():
        raise ConfigError(f"register_action: there is already an action named {name!r}")
    _REGISTERED.append(action)


def unregister_action(name: str) -> None:
    """Forget a registered action (tests; the built-in five stay)."""
    _REGISTERED[:] = [a for a in _REGISTERED if a.name != name]


def registered() -> tuple[Action, ...]:
    """Every action type, built-in first, each at its code."""
    return _BUILT_IN + tuple(_REGISTERED)


def action_names() -> tuple[str, ...]:
    return tuple(a.name for a in registered())


def choose(rng: np.random.Generator, weights: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """One action per row: ``weights`` (k,) times ``allowed`` (n, k), drawn
    with one uniform number per row (a row with nothing allowed: task_update)."""
    w = allowed * weights
    total = w.sum(axis=1)
    u = rng.random(len(w)) * total
    picked = (np.cumsum(w, axis=1) > u[:, None]).argmax(axis=1)
    picked[total <= 0] = TASK
    return picked


def pair_up(rng: np.random.Generator, agents: np.ndarray, loc: np.ndarray, best_friend: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of ``agents`` at the same location for duo chats: mutual best
    friends first, then the rest at random.  Returns (pairs (k, 2), left over)."""
    if len(agents) < 2:
        return np.zeros((0, 2), dtype=np.int64), agents
    chosen = np.zeros(len(loc), dtype=bool)
    chosen[agents] = True
    bf = best_friend[agents]
    mutual = (bf >= 0) & chosen[np.maximum(bf, 0)] & (best_friend[np.maximum(bf, 0)] == agents) \
        & (loc[np.maximum(bf, 0)] == loc[agents]) & (agents < bf)
    friend_pairs = np.stack([agents[mutual], bf[mutual]], axis=1)
    taken = np.zeros(len(loc), dtype=bool)
    taken[friend_pairs.ravel()] = True
    rest = agents[~taken[agents]]
    key = rng.random(len(rest))
    order = np.lexsort((key, loc[rest]))                     # by location, at random within it
    r = rest[order]
    same = loc[r[:-1]] == loc[r[1:]]
    # take adjacent same-place pairs greedily: a position pairs with the next unless it was just taken
    pair_at = np.zeros(len(r), dtype=bool)
    idx = np.flatnonzero(same)
    last = -2
    for i in idx.tolist():                                    # runs of one location: every other position
        if i > last + 1:
            pair_at[i] = True
            last = i
    firsts = r[:-1][pair_at[:-1]] if len(r) > 1 else r[:0]
    seconds = r[1:][pair_at[:-1]] if len(r) > 1 else r[:0]
    pairs = np.concatenate([friend_pairs, np.stack([firsts, seconds], axis=1)]) if len(firsts) else friend_pairs
    used = np.zeros(len(loc), dtype=bool)
    used[pairs.ravel()] = True
    return pairs.astype(np.int64), agents[~used[agents]]


def form_groups(rng: np.random.Generator, agents: np.ndarray, loc: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Groups of GROUP_MIN..GROUP_MAX ``agents`` meeting at one location;
    returns (groups, left over)."""
    if len(agents) < GROUP_MIN:
        return [], agents
    key = rng.random(len(agents))
    r = agents[np.lexsort((key, loc[agents]))]
    groups, left = [], []
    bounds = np.flatnonzero(np.diff(loc[r])) + 1
    for run in np.split(r, bounds):
        n = len(run)
        if n < GROUP_MIN:
            left.append(run)
            continue
        k = -(-n // GROUP_MAX)                                # as few groups as the cap allows
        for part in np.array_split(run, k):
            if len(part) >= GROUP_MIN:
                groups.append(part)
            else:
                left.append(part)
    rest = np.concatenate(left) if left else agents[:0]
    return groups, rest
