"""How `concorder groups` shows tables to organisers: the mix and repeat meetings per
table, and our allocation against the two baselines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from bot.cli.common import console
from bot.services.groups.allocate import Member, letter, mix_of, repeats_at


def _mix_text(mix: dict[str, dict[str, int]]) -> str:
    return "\n".join(
        f"{category}: " + ", ".join(f"{value or '-'} {count}" for value, count in counts.items())
        for category, counts in mix.items()
    )


def show_round(
    rounds: Sequence[Sequence[Sequence[str]]],
    r: int,
    members: dict[str, Member],
    categories: Sequence[str],
    letters: dict[str, str] | None = None,
) -> None:
    """Round r (0-based): per table its members, mix and repeat meetings."""
    view = Table(title=f"Round {r + 1}", show_lines=True)
    for column in ("table", "size", "members", "language", "mix", "repeat meetings"):
        view.add_column(column)
    for t, table in enumerate(rounds[r]):
        names = [
            f"{(letters or {}).get(pid) or letter(position)} {pid}"
            for position, pid in enumerate(table)
        ]
        languages = sorted({members[pid].language for pid in table})
        repeats = repeats_at(rounds, r, t)
        view.add_row(
            str(t + 1),
            str(len(table)),
            "\n".join(names),
            ", ".join(languages),
            _mix_text(mix_of(table, members, categories)),
            "\n".join(f"{a} & {b}" for a, b in repeats) or "none",
        )
    console.print(view)


def show_comparison(quality: dict[str, dict[str, Any]]) -> None:
    view = Table(title="Ours against the baselines (same inputs, same run; lower is better)")
    for column in ("allocation", "score", "mix (sum of squares)", "max deviation", "repeats"):
        view.add_column(column, justify="right" if column != "allocation" else "left")
    names = {
        "ours": "ours (swap search)",
        "random": "random",
        "best_of_100": "best of 100 shuffles",
    }
    for key, name in names.items():
        q = quality[key]
        view.add_row(
            name,
            f"{q['score']:.2f}",
            f"{q['mix']:.2f}",
            f"{q['max_deviation']:.2f}",
            str(q["repeats"]),
        )
    console.print(view)


def members_of(payload: dict[str, Any]) -> dict[str, Member]:
    return {
        m["id"]: Member(m["id"], m["language"], dict(m["attributes"])) for m in payload["members"]
    }
