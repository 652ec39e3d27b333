"""Small, deterministic example systems whose cycles can be recorded into a chronicle and replayed."""
