"""The opinion map as a picture: each participant a dot where PCA puts them, coloured by
opinion group, PNG or SVG by the file's name (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402

from bot.services.synthesis.opinions import OpinionMap  # noqa: E402

FORMATS = {".png", ".svg"}
# Colour-blind-safe (Okabe-Ito), one per group.
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]


def draw(result: OpinionMap, path: str | Path, title: str = "Opinion map") -> Path:
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ValueError(f"{target}: the chart is a .png or an .svg file")
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=120)
    try:
        xy = result.coordinates
        for group in result.groups:
            mask = result.labels == group.id
            ax.scatter(
                xy[mask, 0],
                xy[mask, 1],
                s=28,
                color=COLOURS[group.id % len(COLOURS)],
                label=f"Group {chr(65 + group.id)} ({int(mask.sum())})",
                edgecolors="white",
                linewidths=0.5,
            )
        explained = result.explained + [0.0, 0.0]
        ax.set_xlabel(f"First component ({explained[0]:.0%} of the variance)")
        ax.set_ylabel(f"Second component ({explained[1]:.0%})")
        ax.set_title(title)
        ax.legend(loc="best", frameon=False)
        ax.axhline(0, color="#bbbbbb", linewidth=0.6)
        ax.axvline(0, color="#bbbbbb", linewidth=0.6)
        fig.tight_layout()
        fig.savefig(target, format=target.suffix.lower().lstrip("."))
    finally:
        plt.close(fig)
    return target
