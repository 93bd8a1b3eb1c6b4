"""Importing this module lets each feature add its routes and background tasks to the app."""
from bot import simulator  # noqa: F401
from bot import telegram  # noqa: F401
from bot import sms  # noqa: F401
from bot import dispatcher  # noqa: F401
from scheduler import runner  # noqa: F401
from bot import broadcast  # noqa: F401  (organiser chat, scheduled broadcasts)
from bot import recruitment  # noqa: F401  (assembly, reminders, lapsing)
