"""`concorder rehearse`: the whole assembly on the simulator, with simulated participants.

`people.py` (who they are and how they behave), `answers.py` (what they send, from what
they were sent), `replies.py` (reading, answering, noting what got no answer), `world.py`
(the sandbox: a scratch database, the simulator as the only transport, a virtual clock),
`steps.py` (the organiser's steps on the virtual clock), `conductor.py` (the run on the
clock), `report.py` (what it shows).
"""

from bot.services.rehearsal.conductor import rehearse

__all__ = ["rehearse"]
