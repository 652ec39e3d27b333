"""Choosing what each agent does in a tick, for all agents at once.

The five action types are numbered as in config.ACTIONS.  Every random
choice draws from the run's one generator in a fixed order, so a seed fixes
the whole run.
"""

from __future__ import annotations

import numpy as np

from chronoledger.world.config import ACTIONS

MOVE, REFLECT, DUO, GROUP, TASK = range(len(ACTIONS))
NONE = -1                 # no action this tick (travelling, or past the day's cap)
GROUP_MIN, GROUP_MAX = 3, 6


def choose(rng: np.random.Generator, weights: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """One action per row: ``weights`` (5,) times ``allowed`` (n, 5), drawn
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
