"""Retention, erasure and a person's own data.

What is held and where is listed once, in store/personal_data.py; erasure (`erase`),
what is due (`due`) and the export (`people`) all read that list. `register` keeps a STOP
after erasure; `install` erases what is due on a timer.
"""

from bot.services.privacy.due import Due, assembly_end, due_organisers, due_people
from bot.services.privacy.erase import ERASED, erase_person
from bot.services.privacy.people import (
    export_person,
    rows_held,
)
from bot.services.privacy.running import (
    ErasureRun,
    erase_due,
    erase_request,
    install,
    plan_due,
    reclaim,
    register,
)
from store.personal_data import opt_out_digest

__all__ = [
    "ERASED",
    "Due",
    "ErasureRun",
    "assembly_end",
    "due_organisers",
    "due_people",
    "erase_due",
    "erase_person",
    "erase_request",
    "export_person",
    "install",
    "opt_out_digest",
    "plan_due",
    "reclaim",
    "register",
    "rows_held",
]
