"""What the results page shows, taken from the published package's tables alone (read back
from its files), in the reader's language: texts per language picked, numbers and dates
written the locale's way, charts' geometry beside the tables they draw."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from babel.numbers import format_percent

from bot.services.publish.reading import Table
from bot.services.publish.suppression import SUPPRESSED
from bot.web import pages
from bot.web.results import charts
from flows.i18n import N_, Translator

STAGES = [
    ("invited", N_("Invited")),
    ("responded", N_("Replied")),
    ("registered", N_("Registered")),
    ("selected", N_("Drawn for the panel")),
    ("confirmed", N_("Confirmed their place")),
]
RESPONSES = {
    "accepted": N_("Accepted"),
    "partly": N_("Partly accepted"),
    "rejected": N_("Rejected"),
    "pending": N_("Under consideration"),
    "awaiting": N_("No response yet"),
}
YES_NO = {"yes": N_("Yes"), "no": N_("No")}


class Page:
    """Helpers bound to one language, and the sections built from the tables."""

    def __init__(self, tables: dict[str, Table], t: Translator, min_cell: int):
        self.tables, self.t, self.min_cell = tables, t, min_cell

    def rows(self, name: str) -> list[dict[str, Any]]:
        table = self.tables.get(name)
        return table.rows if table else []

    def text(self, value: Any) -> str:
        """A text given per language: the reader's, else the first there is."""
        if isinstance(value, dict):
            return str(value.get(self.t.language) or next(iter(value.values()), ""))
        return "" if value is None else str(value)

    def number(self, value: Any) -> str:
        if value == SUPPRESSED:
            return self.t.gettext("hidden")
        return pages.number(value, self.t)

    def percent(self, value: Any, digits: int = 0) -> str:
        if value == SUPPRESSED:
            return self.t.gettext("hidden")
        if value is None:
            return "–"
        # The locale's own pattern ("25 %" in French), with the decimals asked for.
        pattern = self.t.locale.percent_formats[None].pattern
        last = pattern.rindex("0") + 1
        if digits:
            pattern = pattern[:last] + "." + "0" * digits + pattern[last:]
        return format_percent(value, format=pattern, locale=self.t.locale)

    def date(self, value: Any) -> str:
        if not value:
            return "–"
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return self.t.date(moment, "long")

    def build(self) -> dict[str, Any]:
        return {
            "assembly": self.assembly(),
            "draw": self.draw(),
            "turnout": self.turnout(),
            "ballots": [self.ballot(row) for row in self.rows("ballot_results")],
            "opinions": self.opinions(),
            "themes": self.themes(),
            "recommendations": self.recommendations(),
        }

    def assembly(self) -> dict[str, Any]:
        """Its name and organiser in the reader's language (a package published before
        they were given per language has the one name only)."""
        row = (self.rows("assembly") or [{}])[0]
        language = self.t.language
        return {
            **row,
            "name": (row.get("names") or {}).get(language) or row.get("name"),
            "organiser": (row.get("organisers") or {}).get(language) or row.get("organiser"),
        }

    def draw(self) -> dict[str, Any] | None:
        runs = [r for r in self.rows("draws") if r["kind"] == "select"]
        if not runs:
            return None
        # The selection the panel came from, as `concorder select --verify` takes it.
        run = next((r for r in runs if r["status"] == "done"), runs[-1])
        values = sorted(
            r["probability"]
            for r in self.rows("draw_probabilities")
            if r["draw_id"] == run["draw_id"] and isinstance(r["probability"], float)
        )
        bins = charts.histogram(values)
        chart = charts.bars(
            [(f"{self.percent(a)}–{self.percent(b)}", n, self.number(n)) for a, b, n in bins]
        )
        quotas = [r for r in self.rows("draw_quotas") if r["draw_id"] == run["draw_id"]]
        summary = None
        if values:
            summary = {
                "lowest": self.percent(values[0], 1),
                "median": self.percent(statistics.median(values), 1),
                "mean": self.percent(statistics.fmean(values), 1),
                "highest": self.percent(values[-1], 1),
            }
        return {"run": run, "summary": summary, "bins": bins, "chart": chart, "quotas": quotas}

    def turnout(self) -> dict[str, Any] | None:
        total = next((r for r in self.rows("participation") if r["category"] == "(all)"), None)
        if total is None:
            return None
        stages = [(self.t.gettext(label), total.get(key)) for key, label in STAGES]
        chart = charts.bars(
            [(label, v if isinstance(v, int) else None, self.number(v)) for label, v in stages]
        )
        return {"stages": stages, "chart": chart}

    def option(self, row: dict[str, Any], key: str) -> str:
        labels = row.get("options") or {}
        if key in labels:
            return self.text(labels[key])
        return self.t.gettext(YES_NO[key]) if key in YES_NO else key

    def ballot(self, row: dict[str, Any]) -> dict[str, Any]:
        tally = row.get("tally") or {}
        counts = (tally.get("details") or {}).get("counts") or {}
        cast = tally.get("ballots") or 0
        options = [
            (self.option(row, key), n, n / cast if cast else None) for key, n in counts.items()
        ]
        chart = charts.bars([(label, n, self.number(n)) for label, n, _ in options])
        ranking = [
            ", ".join(self.option(row, key) for key in tied) for tied in tally.get("ranking") or []
        ]
        voters, voted = row.get("voters"), row.get("voted")
        return {
            "id": row["ballot"],
            "title": self.text(row.get("title")),
            "question": self.text(row.get("question")),
            "voters": voters,
            "voted": voted,
            "turnout": voted / voters if voters and isinstance(voted, int) else None,
            "quorum": row.get("quorum"),
            "quorum_met": row.get("quorum_met"),
            "closed_at": row.get("closed_at"),
            "winners": [self.option(row, key) for key in row.get("winners") or []],
            "options": options,
            "chart": chart if options else None,
            "ranking": ranking if not options else [],
        }

    def opinions(self) -> dict[str, Any] | None:
        people = self.rows("opinion_participants")
        statements = self.rows("opinion_statements")
        if not statements:
            return None
        names = sorted({p["group"] for p in people})
        number = {g: n for n, g in enumerate(names)}
        shares: dict[tuple[int, str], dict] = {
            (r["statement"], r["group"]): r for r in self.rows("opinion_groups")
        }
        groups = [
            {
                "name": g,
                "members": sum(1 for p in people if p["group"] == g),
                "colour": charts.COLOURS[number[g] % len(charts.COLOURS)],
                "shape": charts.SHAPES[number[g] % len(charts.SHAPES)],
            }
            for g in names
        ]
        rows = []
        for s in statements:
            rows.append(
                {
                    "number": s["statement"],
                    "text": self.text(s["text"]),
                    "common_ground": s.get("common_ground"),
                    "all": shares.get((s["statement"], "(all)"), {}),
                    "groups": [shares.get((s["statement"], g), {}) for g in names],
                }
            )
        points = [(p["x"], p["y"], number[p["group"]]) for p in people]
        return {
            "groups": groups,
            "statements": rows,
            "common": [r for r in rows if r["common_ground"]],
            "map": charts.scatter(points) if points else None,
        }

    def themes(self) -> list[dict[str, Any]]:
        quotes: dict[tuple, list[dict]] = {}
        for q in self.rows("theme_quotes"):
            quotes.setdefault((q["prompt"], q["language"], q["theme"]), []).append(q)
        prompts: dict[str, dict[str, Any]] = {}
        for row in self.rows("themes"):
            prompt = prompts.setdefault(
                row["prompt"],
                {"key": row["prompt"], "text": self.text(row.get("prompt_text")), "themes": []},
            )
            prompt["themes"].append(
                {
                    "number": row["theme"],
                    "language": self.t.language_name(row["language"]),
                    "lang": row["language"],
                    "size": row["size"],
                    "words": row.get("words") or [],
                    "tables": row.get("tables") or {},
                    "quotes": quotes.get((row["prompt"], row["language"], row["theme"]), []),
                }
            )
        return list(prompts.values())

    def response(self, status: str | None) -> str:
        status = status or "awaiting"
        return self.t.gettext(RESPONSES[status]) if status in RESPONSES else status

    def recommendations(self) -> list[dict[str, Any]]:
        return [
            {
                "number": r["number"],
                "title": self.text(r.get("title")),
                "text": self.text(r.get("text")),
                "ballot": r.get("ballot"),
                "response": self.response(r.get("response")),
                "responded_on": self.date(r.get("responded_on")),
            }
            for r in self.rows("recommendations")
        ]
