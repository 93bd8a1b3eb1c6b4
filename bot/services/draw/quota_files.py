"""Quotas in the forms organisers already have: the categories file of the Sortition
Foundation's stratification app (CSV: category, name, min, max, and optionally min_flex,
max_flex), and targets given as shares of the panel ("48%", 0.48, or a `share` column).

A share becomes min = floor(share x panel) and max = ceil(share x panel) (rules.py); so
48% of a panel of 40 (19.2 people) is 19 to 20, and 50% of 40 is exactly 20. The flex
columns are the app's outer limits: how far the organisers accept a quota be relaxed when
the draw cannot meet it (the suggestion never goes beyond them).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bot.services.draw.rules import Bounds, DrawError, Quotas, quota_bounds

NAME_COLUMNS = ("name", "feature", "value", "option")


class QuotaFileError(ValueError):
    """A quota file that cannot be used; the message names the line and column."""


def parse_share(text: str) -> float | None:
    """'48%' or '0.48' as a share; None when the cell is empty."""
    text = text.strip()
    if not text:
        return None
    if text.endswith("%"):
        return float(text[:-1].strip()) / 100
    return float(text)


def read_categories_csv(
    path: str | Path, panel_size: int
) -> tuple[Quotas, dict[str, dict[str, Bounds]]]:
    """(quotas, flex limits) from the stratification app's categories CSV."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fp:
            rows = list(csv.reader(fp))
    except FileNotFoundError:
        raise QuotaFileError(f"{path}: file not found") from None
    if not rows:
        raise QuotaFileError(f"{path}: the file is empty")
    header = [h.strip().lower() for h in rows[0]]
    name = next((c for c in NAME_COLUMNS if c in header), None)
    if "category" not in header or name is None:
        raise QuotaFileError(
            f"{path}: line 1 needs the columns category and name (the stratification app's "
            "layout: category, name, min, max, min_flex, max_flex)"
        )
    if not ({"min", "max"} <= set(header) or "share" in header):
        raise QuotaFileError(f"{path}: line 1 needs min and max columns, or a share column")
    spec: dict[str, dict[str, Any]] = {}
    flex_cells: dict[tuple[str, str], tuple[str, str, int]] = {}
    problems = []
    for line, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        cell = dict(zip(header, (v.strip() for v in values), strict=False))
        category, value = cell.get("category", ""), cell.get(name, "")
        if not category or not value:
            problems.append(f"line {line}: no category or {name}")
            continue
        if value in spec.get(category, {}):
            problems.append(f"line {line}: {category}/{value} a second time")
            continue
        try:
            spec.setdefault(category, {})[value] = _target(cell)
        except ValueError as error:
            problems.append(f"line {line}: {error}")
            continue
        flex_cells[(category, value)] = (cell.get("min_flex", ""), cell.get("max_flex", ""), line)
    if problems:
        raise QuotaFileError(f"{path}: " + "; ".join(problems))
    try:
        quotas = quota_bounds(spec, panel_size)
    except DrawError as error:
        raise QuotaFileError(f"{path}: {error.message}") from None
    return quotas, _flex(path, quotas, flex_cells, panel_size)


def _target(cell: dict[str, str]) -> Any:
    """One row's target: min and max (whole numbers or shares such as 48%), or a share."""
    low, high = cell.get("min", ""), cell.get("max", "")
    if cell.get("share"):
        try:
            return {"share": parse_share(cell["share"])}
        except ValueError:
            raise ValueError(f"share: {cell['share']!r} is not a share (48% or 0.48)") from None
    if low.endswith("%") and (high == low or not high):
        return {"share": parse_share(low)}
    try:
        return {"min": int(low), "max": int(high)}
    except ValueError:
        raise ValueError(f"min {low!r} and max {high!r} must be whole numbers") from None


def _flex(
    path: Path,
    quotas: Quotas,
    cells: dict[tuple[str, str], tuple[str, str, int]],
    panel_size: int,
) -> dict[str, dict[str, Bounds]]:
    flex: dict[str, dict[str, Bounds]] = {}
    problems = []
    for (category, value), (low, high, line) in cells.items():
        if not low and not high:
            continue
        bounds = quotas[category][value]
        try:
            outer = Bounds(int(low) if low else 0, int(high) if high else panel_size)
        except ValueError:
            problems.append(f"line {line}: min_flex and max_flex must be whole numbers")
            continue
        if outer.min > bounds.min or outer.max < bounds.max:
            problems.append(
                f"line {line}: the flex limits {outer.min}-{outer.max} must contain "
                f"min {bounds.min} and max {bounds.max}"
            )
            continue
        flex.setdefault(category, {})[value] = outer
    if problems:
        raise QuotaFileError(f"{path}: " + "; ".join(problems))
    return flex
