"""Agreement or score scale for one statement: each ballot is a level 1..`levels` (or None,
blank). The statement passes when at least `threshold_share` of the non-blank ballots chose
`threshold_level` or more (the default: 80% at 4 or more out of 5). Shares are exact
fractions; the floats beside them are for display only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from fractions import Fraction

from .common import OUT_OF_RANGE, WRONG_SHAPE, InvalidVote, Tally, exact, fraction, share


def validate(options: tuple[str, ...], vote: object, levels: int = 5) -> None:
    if vote is None:
        return
    if not isinstance(vote, int) or isinstance(vote, bool):
        raise InvalidVote(WRONG_SHAPE, "a whole number level")
    if not 1 <= vote <= levels:
        raise InvalidVote(OUT_OF_RANGE, f"{vote} not in 1..{levels}")


def _median(counts: Counter[int], total: int, levels: int) -> Fraction | None:
    """The middle level (the mean of the two middle ones when the count is even)."""
    if not total:
        return None
    wanted = sorted({(total - 1) // 2, total // 2})
    found: list[int] = []
    seen = 0
    for level in range(1, levels + 1):
        seen += counts[level]
        while wanted and wanted[0] < seen:
            found.append(level)
            wanted.pop(0)
    return Fraction(sum(found), len(found)) if len(set(found)) > 1 else Fraction(found[0])


def _check(levels: object, threshold_level: object, threshold_share: Fraction) -> None:
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 2:
        raise ValueError(f"levels must be a whole number of at least 2, not {levels!r}")
    if not isinstance(threshold_level, int) or not 1 <= threshold_level <= levels:
        raise ValueError(f"threshold_level must be one of 1..{levels}, not {threshold_level!r}")
    if not 0 < threshold_share <= 1:
        raise ValueError(f"threshold_share must be above 0 and at most 1, not {threshold_share}")


def count(
    method: str,
    options: tuple[str, ...],
    votes: Iterable[object],
    levels: int = 5,
    threshold_level: int = 4,
    threshold_share: Fraction | float | str = Fraction(4, 5),
) -> Tally:
    if len(options) != 1:
        raise ValueError("a scale ballot counts one statement: give its one key as options")
    needed = fraction(threshold_share, "threshold_share")
    _check(levels, threshold_level, needed)
    counts: Counter[int] = Counter()
    blank = 0
    for vote in votes:
        validate(options, vote, levels)
        if vote is None:
            blank += 1
        else:
            counts[vote] += 1  # type: ignore[index]
    total = sum(counts.values())
    shares = {level: share(counts[level], total) for level in range(1, levels + 1)}
    above = sum(counts[level] for level in range(threshold_level, levels + 1))
    above_share = share(above, total)
    passed = bool(total) and above_share >= needed
    mean = Fraction(sum(level * n for level, n in counts.items()), total) if total else None
    median = _median(counts, total, levels)
    return Tally(
        method=method,
        options=options,
        ballots=total,
        abstentions=blank,
        winners=options if passed else (),
        ranking=(options,),
        details={
            "levels": levels,
            # Level keys are strings: JSON objects have string keys.
            "counts": {str(level): counts[level] for level in shares},
            "shares": {str(level): float(s) for level, s in shares.items()},
            "shares_exact": {str(level): exact(s) for level, s in shares.items()},
            "mean": float(mean) if mean is not None else None,
            "mean_exact": exact(mean) if mean is not None else None,
            "median": float(median) if median is not None else None,
            "threshold_level": threshold_level,
            "threshold_share": exact(needed),
            "at_or_above": above,
            "share_at_or_above": float(above_share),
            "share_at_or_above_exact": exact(above_share),
            "passed": passed,
        },
    )
