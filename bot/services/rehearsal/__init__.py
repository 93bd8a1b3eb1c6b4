"""`concorder rehearse`: the whole assembly on the simulator, with simulated participants.

`people.py` (who they are and how they behave), `world.py` (the sandbox: a scratch
database, the simulator as the only transport, a virtual clock), `steps.py` (the
organiser's steps as plain functions), `conductor.py` (the run), `report.py` (what it
shows).
"""

from bot.services.rehearsal.conductor import rehearse

__all__ = ["rehearse"]
