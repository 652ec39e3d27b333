"""A multi-agent daily-life simulation: agents with personas live through
timeboxed days, move, talk, reflect and remember; every action is stored,
logged to a chronicle, and replayable (docs/world.md)."""
