"""What `concorder select` and `concorder replace` show: quotas, the draw, its audit facts,
the published panels, and a live line while the solver works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from bot.services import draw

console = Console()
err = Console(stderr=True)


@contextmanager
def solver_progress() -> Iterator[draw.Progress]:
    """A live line for long solves, fed by the library's progress events."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("Starting the selection", total=None)

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "start":
                bar.update(
                    task,
                    description=event.get("message") or event["name"],
                    total=event.get("total"),
                    completed=0,
                )
            elif event["event"] == "update":
                bar.update(
                    task, completed=event["current"], description=event.get("message") or None
                )

        yield on_event


def show_quota_table(rows: list[draw.QuotaRow], title: str = "Quotas") -> None:
    table = Table(title=title)
    for name, justify in (
        ("Category", "left"),
        ("Value", "left"),
        ("Pool", "right"),
        ("Target", "right"),
        ("Selected", "right"),
        ("", "center"),
    ):
        table.add_column(name, justify=justify)
    for row in rows:
        target = str(row.min) if row.min == row.max else f"{row.min}–{row.max}"
        mark = "[green]✓[/]" if row.met else "[red]✗[/]"
        table.add_row(row.category, row.value, str(row.pool), target, str(row.selected), mark)
    console.print(table)


def show_draw(result: draw.Draw) -> None:
    show_quota_table(result.quota_table)
    if result.lowest_probability is not None:
        console.print(
            f"Selection probability: lowest {result.lowest_probability:.2%}, "
            f"mean {result.mean_probability:.2%}."
        )
    else:
        console.print(
            f"Selection probabilities: not computed by the {result.audit['algorithm']} algorithm."
        )
    console.print(f"[bold]Selected ({len(result.selected)}):[/] {' '.join(result.selected)}")
    reserve = " ".join(f"{rank}.{pid}" for rank, pid in enumerate(result.reserve, start=1))
    console.print(f"[bold]Reserve, in order ({len(result.reserve)}):[/] {reserve or '-'}")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")


def show_audit(audit_data: dict[str, Any]) -> None:
    console.print(
        f"Seed {audit_data['seed']!r} (number {audit_data['seed_number']}), "
        f"algorithm {audit_data['algorithm']}, {audit_data['library']} "
        f"{audit_data['library_version']}, input sha256 {audit_data['input_sha256']}."
    )


def show_published(result: draw.Draw, path: Path | None) -> None:
    table = Table(title=f"{len(result.panels)} quota-compliant panels")
    table.add_column("#", justify="right")
    table.add_column("Panel sha256")
    for panel in result.published_panels:
        table.add_row(str(panel["index"]), panel["sha256"])
    console.print(table)
    console.print(
        f"List hash (in the audit trail): [bold]{result.audit['panel_list_sha256']}"
        f"[/]." + (f" Published to {path}." if path else "")
    )
    console.print(
        "Announce a pick seed nobody could know before now (e.g. tomorrow's "
        "lottery numbers), then run `concorder select --pick-seed SEED`. The panel "
        f"is number int(sha256(SEED), 16) mod {len(result.panels)}."
    )


def write_publication(result: draw.Draw, draw_id: str, path: Path) -> None:
    document = {
        "draw": draw_id,
        "seed": result.audit["seed"],
        "algorithm": result.audit["algorithm"],
        "library": f"{result.audit['library']} {result.audit['library_version']}",
        "input_sha256": result.audit["input_sha256"],
        "panel_hash": "sha256 of the sorted member ids joined by newlines",
        "list_hash": "sha256 of the panel hashes, in order, joined by newlines",
        "list_sha256": result.audit["panel_list_sha256"],
        "pick_rule": "index = int(sha256(pick seed as UTF-8), 16) mod number of panels",
        "panels": result.published_panels,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
