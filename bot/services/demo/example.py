"""The bundled example assembly the demo serves: examples/citizens-jury/ shipped inside the
package (a wheel has no examples/ directory), read with one change for the demo."""

from __future__ import annotations

from pathlib import Path

from flows.assembly import Assembly, AssemblyError, assembly_of
from flows.config_file import AssemblyFile
from scheduler.config import Calendar, calendar_of

FILES = Path(__file__).resolve().parent / "example"
ASSEMBLY = FILES / "assembly.toml"
POOL = FILES / "pool.csv"
OUTSIDE = FILES / "respondents-outside.csv"

# A visitor may try the demo at night: the example's quiet hours would hold every message
# until the morning, so the demo has none.
QUIET_HOURS = 'quiet_hours = "21:00-08:00"'
NO_QUIET_HOURS = 'quiet_hours = ""'


def load() -> tuple[Assembly, Calendar]:
    """The example assembly and its calendar, quiet hours off."""
    text = ASSEMBLY.read_text(encoding="utf-8")
    if QUIET_HOURS not in text:
        raise AssemblyError(str(ASSEMBLY), ["the demo expects the example's quiet hours line"])
    file = AssemblyFile.parse(text.replace(QUIET_HOURS, NO_QUIET_HOURS), str(ASSEMBLY))
    return assembly_of(file), calendar_of(file)
