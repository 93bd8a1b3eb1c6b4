"""Every flow the service knows. Importing this module registers them all."""

import flows.briefing  # noqa: F401  (commands: TIME, MORE, READ)
import flows.invitation  # noqa: F401  (and consent, registration, confirmation)
import flows.organiser  # noqa: F401  (commands: /broadcast, /schedule, LATE)
from flows import welcome  # noqa: F401
