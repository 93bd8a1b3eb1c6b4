"""What `concorder select` and `concorder replace` show: quotas, the draw, its audit facts,
the published panels, and a live line while the solver works."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
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
from bot.services.draw import probabilities as chances

console = Console()
err = Console(stderr=True)


@contextmanager
def solver_progress() -> Iterator[draw.Progress]:
    """A live line for long solves, fed by the solver's progress events; plain lines with
    the elapsed time when the output is not a terminal (a log, a CI job)."""
    if not err.is_terminal:
        yield _plain_progress()
        return
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


def _plain_progress(every: float = 1.0) -> draw.Progress:
    """One line a second at most: elapsed time, the phase, what it says (for the kinds
    solver: the level, the linear programs solved and the lowest probability so far)."""
    started = time.monotonic()
    last = [-every]

    def on_event(event: dict[str, Any]) -> None:
        now = time.monotonic() - started
        if event["event"] == "update" and now - last[0] < every:
            return
        last[0] = now
        if event["event"] == "start":
            text = event.get("message") or event["name"]
            total = f" ({event['total']})" if event.get("total") else ""
            err.print(f"[{now:7.1f} s] {text}{total}", highlight=False, soft_wrap=True)
        elif event["event"] == "update":
            text = event.get("message") or f"{event['current']} done"
            err.print(f"[{now:7.1f} s] {text}", highlight=False, soft_wrap=True)
        elif event["event"] == "end":
            err.print(f"[{now:7.1f} s] done", highlight=False, soft_wrap=True)

    return on_event


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
    elif not result.probabilities:
        console.print(
            f"Selection probabilities: not computed by the {result.audit['algorithm']} algorithm."
        )
    if result.lottery:
        show_lottery(result.lottery)
    if result.probabilities:
        show_probabilities(result.probabilities, (result.estimate or {}).get("draws", 0))
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
    published = result.published_panels
    shown = published if len(published) <= 12 else published[:10]
    for panel in shown:
        table.add_row(str(panel["index"]), panel["sha256"])
    if len(shown) < len(published):
        table.add_row("…", f"{len(published) - len(shown)} more in the published file")
    console.print(table)
    console.print(
        f"List hash (in the audit trail): [bold]{result.audit['panel_list_sha256']}"
        f"[/]." + (f" Published to {path}." if path else "")
    )
    count = len(result.panels)
    console.print(
        f"Publish the list, then draw a number from 0 to {count - 1} in public (dice, a "
        f"lottery ball machine, a randomness beacon) and run `concorder select --lottery-pick "
        f"N`; or announce a pick seed nobody could know before now and run `concorder select "
        f"--pick-seed SEED` (the panel is int(sha256(SEED), 16) mod {count})."
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
        "solver_backend": result.audit["solver_backend"],
        "versions": result.audit.get("versions"),
        "pick_rule": "index = the number drawn in public, 0 to M - 1 (concorder select "
        "--lottery-pick N), or int(sha256(pick seed as UTF-8), 16) mod M (--pick-seed)",
        "lottery": result.lottery,
        "panels": result.published_panels,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _pct(value: float, draws: int = 0) -> str:
    if draws:
        return f"{value:.2%} ± {chances.standard_error(value, draws):.2%}"
    return f"{value:.2%}"


def show_probabilities(probabilities: Mapping[str, float], draws: int = 0) -> None:
    """Everyone's selection probability as a distribution: lowest, deciles, mean, highest,
    Gini, and a histogram of bars (estimated ones with their standard error)."""
    found = chances.spread(probabilities, draws)
    how = (
        f"estimated from {draws} draws (± one standard error)"
        if draws
        else "exact, from the distribution over panels"
    )
    console.print(f"[bold]Selection probabilities of the {found.people} respondents[/] ({how}):")
    console.print(
        f"  lowest {_pct(found.lowest, draws)}, mean {found.mean:.2%}, highest "
        f"{_pct(found.highest, draws)}, Gini {found.gini:.3f}",
        highlight=False,
    )
    deciles = "  ".join(f"{10 * (i + 1)}%: {v:.2%}" for i, v in enumerate(found.deciles))
    console.print(f"  deciles  {deciles}", highlight=False)
    show_bars(list(probabilities.values()))


def show_bars(values: list[float], width: int = 40) -> None:
    bins = chances.histogram(values)
    most = max(count for _, _, count in bins) or 1
    for low, high, count in bins:
        bar = "█" * max(1 if count else 0, round(width * count / most))
        console.print(f"  {low:7.2%} – {high:7.2%} [cyan]{bar}[/] {count}", highlight=False)


def show_lottery(lottery: Mapping[str, Any]) -> None:
    console.print(
        f"Uniform lottery of {lottery['panels']} equally likely panels: rounding changed a "
        f"person's probability by at most {lottery['max_change']:.4%} (lowest "
        f"{lottery['lowest_before']:.4%} before rounding, {lottery['lowest_after']:.4%} after).",
        highlight=False,
    )


def show_comparison(rows: list[dict[str, Any]]) -> None:
    """Algorithms side by side on the same respondents."""
    table = Table(title="The same respondents, quotas and seed, by algorithm")
    for name in (
        "Algorithm",
        "Time",
        "Lowest",
        "10%",
        "Median",
        "Mean",
        "Highest",
        "Gini",
        "Quotas met",
        "How",
    ):
        table.add_column(name, justify="left" if name in ("Algorithm", "How") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["algorithm"], "-", "-", "-", "-", "-", "-", "-", "-", row["error"])
            continue
        found, draws = row["spread"], row["draws"]
        table.add_row(
            row["algorithm"],
            f"{row['seconds']:.1f} s",
            _pct(found.lowest, draws),
            f"{found.deciles[0]:.2%}",
            f"{found.deciles[4]:.2%}",
            f"{found.mean:.2%}",
            _pct(found.highest, draws),
            f"{found.gini:.3f}",
            "yes" if row["quotas_met"] else "NO",
            f"estimated from {draws} draws" if draws else "exact",
        )
    console.print(table)


def write_chart(path: Path, series: Mapping[str, list[float]], title: str) -> None:
    path.write_text(chances.svg_chart(series, title), encoding="utf-8")
    console.print(f"Chart of the selection probabilities written to {path}.")
