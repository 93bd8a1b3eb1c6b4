"""A Frictionless Data Package: resources (a Table Schema and rows each) written as CSV
files beside their `datapackage.json` descriptor (https://specs.frictionlessdata.io/)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.services.publish.suppression import SUPPRESSED

PROFILE = "tabular-data-package"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # string, integer, number, boolean, date, datetime, object, array
    description: str
    required: bool = False


@dataclass
class Resource:
    """One table of the package; `rows` are dicts keyed by the fields' names."""

    name: str  # lower-case, digits, '-', '_', '.': also the CSV file's name
    title: str
    description: str
    fields: list[Field]
    rows: list[dict[str, Any]] = field(default_factory=list)
    primary_key: list[str] | None = None

    @property
    def path(self) -> str:
        return f"{self.name}.csv"

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([f.name for f in self.fields])
        for row in self.rows:
            writer.writerow([cell(row.get(f.name)) for f in self.fields])
        return buffer.getvalue()

    def descriptor(self, data: bytes) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "fields": [
                {
                    "name": f.name,
                    "type": f.type,
                    "description": f.description,
                    **({"constraints": {"required": True}} if f.required else {}),
                }
                for f in self.fields
            ],
            "missingValues": ["", SUPPRESSED],
        }
        if self.primary_key:
            schema["primaryKey"] = self.primary_key
        return {
            "name": self.name,
            "path": self.path,
            "title": self.title,
            "description": self.description,
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "bytes": len(data),
            "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
            "schema": schema,
        }


def cell(value: Any) -> str:
    """A value as the Table Schema types read it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass
class Package:
    name: str
    title: str
    created: datetime
    resources: list[Resource]
    description: str | None = None

    def files(self) -> dict[str, bytes]:
        """Every file of the package by name, the descriptor last."""
        files = {r.path: r.csv_text().encode() for r in self.resources}
        descriptor = {
            "profile": PROFILE,
            "name": self.name,
            "title": self.title,
            **({"description": self.description} if self.description else {}),
            "created": cell(self.created),
            "licenses": [
                {
                    "name": "ODC-PDDL-1.0",
                    "path": "https://opendatacommons.org/licenses/pddl/",
                    "title": "Open Data Commons Public Domain Dedication and License v1.0",
                }
            ],
            "resources": [r.descriptor(files[r.path]) for r in self.resources],
        }
        files["datapackage.json"] = (
            json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"
        ).encode()
        return files

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, data in self.files().items():
            path = out / name
            path.write_bytes(data)
            written.append(path)
        return written
