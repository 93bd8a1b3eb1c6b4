"""Selection probabilities as a distribution anyone can read: the lowest, the deciles, the
mean, the Gini coefficient, a histogram and a chart (SVG); and the legacy algorithm's
probabilities, which it does not compute, estimated by repeated draws.

All pure apart from `estimate_by_draws`, which runs the draws.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.services.draw.rules import DrawInput
    from bot.services.draw.worker import Progress, SolverWorker


@dataclass(frozen=True)
class Spread:
    people: int
    lowest: float
    deciles: tuple[float, ...]  # 10%, 20%, ... 90% of people have at most this
    mean: float
    highest: float
    gini: float
    draws: int = 0  # estimated from this many draws (0: exact)

    @property
    def standard_error(self) -> float:
        """Of an estimate near the mean (the largest for probabilities below one half)."""
        return standard_error(self.mean, self.draws)


def standard_error(probability: float, draws: int) -> float:
    """The standard error of a share estimated from `draws` independent draws."""
    return math.sqrt(max(probability * (1 - probability), 0.0) / draws) if draws else 0.0


def _quantile(ordered: Sequence[float], share: float) -> float:
    """The value below which `share` of people fall (linear between neighbours)."""
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def gini(values: Sequence[float]) -> float:
    ordered = sorted(values)
    total = sum(ordered)
    if not ordered or total <= 0:
        return 0.0
    weighted = sum((2 * (i + 1) - len(ordered) - 1) * v for i, v in enumerate(ordered))
    return weighted / (len(ordered) * total)


def spread(probabilities: Mapping[str, float], draws: int = 0) -> Spread:
    ordered = sorted(probabilities.values())
    if not ordered:
        raise ValueError("no probabilities")
    return Spread(
        people=len(ordered),
        lowest=ordered[0],
        deciles=tuple(_quantile(ordered, d / 10) for d in range(1, 10)),
        mean=sum(ordered) / len(ordered),
        highest=ordered[-1],
        gini=gini(ordered),
        draws=draws,
    )


def histogram(values: Sequence[float], bins: int = 10) -> list[tuple[float, float, int]]:
    """(from, to, people) for `bins` equal steps between the lowest and highest value."""
    low, high = min(values), max(values)
    if high - low < 1e-9:
        return [(low, high, len(values))]
    step = (high - low) / bins
    counts = Counter(min(int((v - low) / step), bins - 1) for v in values)
    return [(low + i * step, low + (i + 1) * step, counts.get(i, 0)) for i in range(bins)]


def from_counts(counts: Mapping[str, int], ids: Sequence[str], draws: int) -> dict[str, float]:
    return {pid: counts.get(pid, 0) / draws for pid in ids}


def estimate_by_draws(
    inp: DrawInput,
    seed: str,
    draws: int,
    algorithm: str = "legacy",
    *,
    worker: SolverWorker | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Each person's share of `draws` draws with the seeds SEED#1 ... SEED#N: the estimate
    of a probability the algorithm does not compute (standard error sqrt(p(1-p)/N))."""
    from bot.services.draw.rules import SOLVER_BACKEND, DrawError, seed_number
    from bot.services.draw.worker import SolverWorker, rerun_many

    payload = {
        "mode": "select",
        "input": inp.canonical(),
        "algorithm": algorithm,
        "panels": 1,
        "pick_seed": None,
        "solver_backend": SOLVER_BACKEND,
    }
    counts: Counter[str] = Counter()
    own = worker is None
    worker = worker or SolverWorker()
    try:
        done = 0
        if progress:
            progress({"event": "start", "name": "estimate", "total": draws, "message": None})
        while done < draws:
            seeds = [f"{seed}#{i}" for i in range(done + 1, min(draws, done + 20) + 1)]
            batch = [{**payload, "seed": s, "seed_number": seed_number(s)} for s in seeds]
            for answer in rerun_many(batch, worker=worker):
                if isinstance(answer, DrawError):
                    raise answer
                counts.update(answer["selected"])
            done += len(seeds)
            if progress:
                message = f"{algorithm}: estimating probabilities, {done} of {draws} draws"
                progress({"event": "update", "current": done, "message": message})
        if progress:
            progress({"event": "end"})
    finally:
        if own:
            worker.close()
    return from_counts(counts, [r.id for r in inp.respondents], draws)


# --- a chart anyone can open -------------------------------------------------------------

COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93")


def svg_chart(series: Mapping[str, Sequence[float]], title: str) -> str:
    """Each series' probabilities sorted from lowest to highest, against the share of
    people: the flatter and higher the line's left end, the fairer the draw."""
    width, height, margin = 640, 360, 56
    top = max((max(v) for v in series.values() if v), default=1.0) or 1.0
    top = math.ceil(top * 100 / 5) * 5 / 100 or 0.05
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    plot_w, plot_h = width - 2 * margin, height - 2 * margin
    for i in range(6):
        y = margin + plot_h - plot_h * i / 5
        parts.append(
            f'<line x1="{margin}" y1="{y:.1f}" x2="{width - margin}" y2="{y:.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{margin - 6}" y="{y + 4:.1f}" text-anchor="end">{top * i / 5:.1%}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height - 16}" text-anchor="middle">'
        "share of respondents, from the least likely to be selected to the most</text>"
    )
    for n, (label, values) in enumerate(series.items()):
        ordered = sorted(values)
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(
            f"{margin + plot_w * i / max(len(ordered) - 1, 1):.1f},"
            f"{margin + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(ordered)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{margin + 8}" y="{margin + 16 * (n + 1)}" fill="{colour}">'
            f"{escape(label)}: lowest {ordered[0]:.2%}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
