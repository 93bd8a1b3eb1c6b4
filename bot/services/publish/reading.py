"""A published package read back: each resource's rows typed by its Table Schema, so
whatever shows the package (the results page) shows exactly what its files hold."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from bot.services.publish.suppression import SUPPRESSED


@dataclass
class Table:
    name: str
    path: str
    title: str
    description: str
    bytes: int
    rows: list[dict[str, Any]]


def value(text: str, kind: str) -> Any:
    """One CSV cell as its field's type; '' is None and 'suppressed' stays as it is."""
    if text == "":
        return None
    if text == SUPPRESSED:
        return SUPPRESSED
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        return text == "true"
    if kind in ("object", "array"):
        return json.loads(text)
    return text


def read(files: dict[str, str]) -> tuple[dict[str, Any], dict[str, Table]]:
    """The descriptor, and each resource by name in the package's order."""
    descriptor = json.loads(files["datapackage.json"])
    tables: dict[str, Table] = {}
    for resource in descriptor["resources"]:
        types = {f["name"]: f["type"] for f in resource["schema"]["fields"]}
        reader = csv.DictReader(io.StringIO(files[resource["path"]]))
        rows = [{k: value(v, types.get(k, "string")) for k, v in row.items()} for row in reader]
        tables[resource["name"]] = Table(
            resource["name"],
            resource["path"],
            resource.get("title", resource["name"]),
            resource.get("description", ""),
            resource.get("bytes", 0),
            rows,
        )
    return descriptor, tables
