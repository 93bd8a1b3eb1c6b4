"""The geometry of the page's charts, drawn as inline SVG by the template: horizontal bars
and the opinion map's scatter. Pure numbers; each chart has a table beside it."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 400  # the viewBox's width: the SVG scales to the column (a phone's, at most 30rem)
BAR = 20
LINE = 22  # each bar's label on a line of its own above it, so a long one is never cut
GAP = 12
VALUE = 64  # room for the value after the longest bar
# Dark enough on white for graphics (3:1 and more), each group also with its own shape.
COLOURS = ["#005a8f", "#a34b00", "#00704f", "#8f3f78", "#4d4d4d"]
SHAPES = ["circle", "square", "diamond", "triangle", "cross"]


@dataclass
class Bar:
    label: str
    value: float
    text: str  # the value as shown beside the bar
    y: int  # the label's baseline; the bar is below it
    width: float

    @property
    def bar_y(self) -> int:
        return self.y + 6


@dataclass
class Bars:
    bars: list[Bar]
    height: int
    width: int = WIDTH
    bar: int = BAR


def bars(items: list[tuple[str, float | None, str]]) -> Bars:
    """(label, value, shown text) -> bars scaled to the largest value; a value left out
    (hidden, or none) draws no bar, its text says why."""
    top = max((v for _, v, _ in items if v), default=0) or 1
    room = WIDTH - VALUE
    step = LINE + BAR + GAP
    out = [
        Bar(label, v or 0, text, LINE - 4 + n * step, room * (v or 0) / top)
        for n, (label, v, text) in enumerate(items)
    ]
    return Bars(out, len(items) * step)


@dataclass
class Dot:
    x: float
    y: float
    group: int
    colour: str
    shape: str


@dataclass
class Scatter:
    dots: list[Dot]
    size: int
    centre: float


def scatter(points: list[tuple[float, float, int]], size: int = 360) -> Scatter:
    """Points (x, y, group) placed in a square, the origin in the middle, the same scale on
    both axes so distances read true."""
    reach = max((max(abs(x), abs(y)) for x, y, _ in points), default=1) or 1
    half = size / 2
    scale = (half - 16) / reach
    dots = [
        Dot(
            round(half + x * scale, 1),
            round(half - y * scale, 1),
            g,
            COLOURS[g % len(COLOURS)],
            SHAPES[g % len(SHAPES)],
        )
        for x, y, g in points
    ]
    return Scatter(dots, size, half)


def histogram(values: list[float], bins: int = 10) -> list[tuple[float, float, int]]:
    """(from, to, how many) for equal bins over 0 to the highest value's tenth."""
    if not values:
        return []
    top = max(values)
    last = min(bins, int(top * bins) + 1)
    counts = [0] * last
    for v in values:
        counts[min(int(v * bins), last - 1)] += 1
    return [(n / bins, (n + 1) / bins, c) for n, c in enumerate(counts)]
