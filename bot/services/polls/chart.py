"""The report's chart: each agreement question's mean before and after (1 to 5), and the
share right of each knowledge question and the knowledge score, drawn with matplotlib's
Agg backend (no display) as PNG or SVG, by the file's suffix."""

from __future__ import annotations

from pathlib import Path

from bot.services.polls.report import OVERALL, Report

FORMATS = (".png", ".svg")


def draw(report: Report, path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: give a .png or .svg file")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [r for r in report.rows if r.group == OVERALL and r.result and r.result.n]
    panels = [
        ([r for r in rows if r.kind == "agree"], "mean answer (1 disagree - 5 agree)", (1, 5)),
        ([r for r in rows if r.kind != "agree"], "share right", (0, 1)),
    ]
    panels = [p for p in panels if p[0]]
    if not panels:
        raise ValueError("no question has pairs of answers yet: nothing to draw")
    height = max(2.5, 0.45 * sum(len(p[0]) for p in panels) + 1.5)
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, height), squeeze=False)
    for ax, (items, label, limits) in zip(axes[:, 0], panels, strict=True):
        ys = list(range(len(items)))[::-1]
        for y, row in zip(ys, items, strict=True):
            ax.plot([row.result.before, row.result.after], [y, y], color="0.7", zorder=1)
        ax.scatter([r.result.before for r in items], ys, label=report.before, zorder=2)
        ax.scatter([r.result.after for r in items], ys, label=report.after, zorder=3)
        ax.set_yticks(ys, [f"{r.question} (n={r.result.n})" for r in items])
        ax.set_xlim(*limits)
        ax.set_ylim(-0.6, len(items) - 0.4)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    axes[0, 0].set_title(f"{report.title}: {report.before} and {report.after}, same people")
    figure.tight_layout()
    figure.savefig(path, format=path.suffix.lower().lstrip("."))
    plt.close(figure)
