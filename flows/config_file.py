"""Reading the assembly file's TOML and naming each mistake by its place and line.

`AssemblyFile` is the file read and parsed once; the assembly (flows/assembly.py) and the
calendar (scheduler/config.py) are both built from it, each checking its own tables.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


class Strict(BaseModel):
    """A table of the file: unknown keys are mistakes, and nothing changes it once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2026-12-01T18:00:00Z or +01:00")
    return value


# A moment in the file: with its time zone, or the organisers' intent is a guess.
Moment = Annotated[datetime, BeforeValidator(_aware)]


class ConfigError(ValueError):
    """A file that cannot be used; `problems` lists each place and what is wrong."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def read_text(path: str | Path, error: type[ConfigError]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(str(path), ["file not found"]) from None
    except IsADirectoryError:
        inside = Path(path) / "assembly.toml"
        hint = f": give the file, such as {inside}" if inside.is_file() else ": give a file"
        raise error(str(path), [f"a folder, not a file{hint}"]) from None
    except PermissionError:
        raise error(str(path), ["not readable (permission denied)"]) from None
    except UnicodeDecodeError:
        raise error(str(path), ["not UTF-8 text"]) from None


def parse_toml(text: str, path: str, error: type[ConfigError]) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(path, [f"not valid TOML: {exc}"]) from None


CALENDAR_TABLES = ("sessions", "briefings", "schedule")


@dataclass(frozen=True)
class AssemblyFile:
    """One assembly file: where it came from, its text (errors name lines in it) and its
    TOML tables. Readers take a copy of the tables (`tables()`), so none sees another's
    defaults."""

    path: str
    text: str
    raw: Mapping[str, Any]

    @classmethod
    def read(cls, path: str | Path, error: type[ConfigError] = ConfigError) -> AssemblyFile:
        """Read and parse the file; `error` names what cannot be read or is not TOML."""
        return cls.parse(read_text(path, error), str(path), error)

    @classmethod
    def parse(
        cls, text: str, path: str = "assembly.toml", error: type[ConfigError] = ConfigError
    ) -> AssemblyFile:
        return cls(path=path, text=text, raw=parse_toml(text, path, error))

    def tables(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.raw))

    @property
    def has_calendar(self) -> bool:
        """Whether it has calendar tables at all (a recruitment-only file has not)."""
        return any(key in self.raw for key in CALENDAR_TABLES)


def problems_of(exc: ValidationError, data: dict[str, Any], text: str) -> list[str]:
    """One readable line per validation error: place, line in the file, what is wrong."""
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check its spelling and its table)"
        line = line_of(text, error["loc"])
        where = f" (line {line})" if line else ""
        problems.append(f"{place(error['loc'], data)}{where}: {message}")
    return problems


def place(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """A readable place: list items by number and id, e.g. 'sessions #2 (id 's2') > end'."""
    parts: list[str] = []
    node: Any = raw
    for step in loc:
        if isinstance(step, int):
            item = node[step] if isinstance(node, list) and step < len(node) else None
            label = f"#{step + 1}"
            if isinstance(item, dict) and "id" in item:
                label += f" (id {item['id']!r})"
            parts[-1] = f"{parts[-1]} {label}" if parts else label
            node = item
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return " > ".join(parts) or "(top level)"


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key an error is about, found from the table headers (best effort)."""
    lines = text.splitlines()
    if not loc or not isinstance(loc[0], str):
        return None
    table, start = loc[0], 0
    if len(loc) > 1 and isinstance(loc[1], int):
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        hits = [i for i, line in enumerate(lines) if header.match(line)]
        if loc[1] >= len(hits):
            return None
        start, keys = hits[loc[1]], loc[2:]
    else:
        header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        hits = [i for i, line in enumerate(lines) if header.match(line)]
        if not hits:
            return None
        start, keys = hits[0], loc[1:]
    key = next((k for k in keys if isinstance(k, str)), None)
    if key is None:
        return start + 1
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=.]")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if pattern.match(lines[i]):
            return i + 1
    return start + 1
