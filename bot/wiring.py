"""Importing this module lets each feature add its routes and background tasks to the app."""
from bot import (
    audit_sequencer,  # noqa: F401  (links audit events into the chain)
    broadcast,  # noqa: F401  (organiser chat, scheduled broadcasts)
    dispatcher,  # noqa: F401
    recruitment,  # noqa: F401  (assembly, reminders, lapsing)
    simulator,  # noqa: F401
    sms,  # noqa: F401
    telegram,  # noqa: F401
)
from scheduler import runner, timers  # noqa: F401
