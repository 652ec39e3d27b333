"""Where agents can be: locations with capacity and open hours, and the
travel time between them (an agent cannot teleport: a trip spans ticks)."""

from __future__ import annotations

import numpy as np

from chronoledger.world.config import WorldConfig


class Environment:
    """The locations of a world config as arrays the scheduler indexes."""

    def __init__(self, config: WorldConfig):
        self.config = config
        self.names = config.location_names
        self.index = {n: i for i, n in enumerate(self.names)}
        self.capacity = np.array([loc.capacity for loc in config.locations.values()], dtype=np.int64)
        # open_at[hour, location]: whether it is open during that hour
        self.open_at = np.array([[loc.is_open(h) for loc in config.locations.values()] for h in range(24)], dtype=bool)
        self.travel_ticks = config.travel_ticks()
        self.travel_minutes = config.travel_minutes
        # where agents start a run: the place named home (any case, as the sandbox's Home), else the first
        # of kind home, else the first place
        homes = [i for i, n in enumerate(self.names) if n.lower() == "home"] or \
            [i for i, loc in enumerate(config.locations.values()) if loc.kind.lower() == "home"]
        self.home = homes[0] if homes else 0

    def occupancy(self, loc: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Agents at or on their way to each location (a trip holds its place at the destination)."""
        where = np.where(dest >= 0, dest, loc)
        return np.bincount(where, minlength=len(self.names))

    def admit(self, movers: np.ndarray, dest: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
        """Which of ``movers`` (in their order) fit at their destination: the
        first come, up to each location's free capacity."""
        if len(movers) == 0:
            return np.zeros(0, dtype=bool)
        d = dest[movers]
        order = np.argsort(d, kind="stable")
        sorted_d = d[order]
        starts = np.searchsorted(sorted_d, sorted_d, side="left")
        rank = np.arange(len(d)) - starts                    # 0 for the first mover to each place
        free = np.maximum(self.capacity - occupancy, 0)
        ok = np.empty(len(d), dtype=bool)
        ok[order] = rank < free[sorted_d]
        return ok
