import os

from hypothesis import HealthCheck, settings

# Slow fuzzing runs with CHRONOLEDGER_SLOW=1; the default profile keeps the
# suite to a couple of minutes on two cores.
settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("slow" if os.environ.get("CHRONOLEDGER_SLOW") else "default")

SLOW = bool(os.environ.get("CHRONOLEDGER_SLOW"))
