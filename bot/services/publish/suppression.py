"""Small cells hidden from published counts, and the cells that would give them away.

Primary suppression hides every count from 1 to `min_cell - 1`. A table's counts are tied
by sums (the values of a category add up to its total): when a sum holds exactly one
hidden cell, subtraction recovers it, so a second cell of that sum is hidden too (the
smallest that is still shown: a value, else the total). Hiding one cell can expose a
neighbour in another sum, so this repeats until no sum holds exactly one hidden cell.
Pure: counts in, the keys to hide out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

SUPPRESSED = "suppressed"  # what a published cell says in place of its count


def suppress(
    cells: Mapping[Hashable, int],
    sums: Iterable[tuple[list[Hashable], Hashable]],
    min_cell: int,
    public: Iterable[Hashable] = (),
) -> set[Hashable]:
    """The keys of `cells` to hide. `sums` lists (parts, total): the parts add up to the
    total. `public` cells are published elsewhere and are never hidden."""
    sums = [(list(parts), total) for parts, total in sums]
    public = set(public)
    hidden = {key for key, value in cells.items() if 0 < value < min_cell and key not in public}
    changed = True
    while changed:
        changed = False
        for parts, total in sums:
            members = [*parts, total]
            if sum(key in hidden for key in members) != 1:
                continue
            shown = [key for key in members if key not in hidden and key not in public]
            if not shown:
                continue  # the rest is public anyway: nothing more to hide
            # The smallest value shown, a non-zero one first; the total only as a last resort.
            shown.sort(key=lambda k: (k == total, cells[k] == 0, cells[k], repr(k)))
            hidden.add(shown[0])
            changed = True
    return hidden


def per_category(
    cells: Mapping[tuple[str, str], int], total: int, min_cell: int
) -> dict[tuple[str, str], int | str]:
    """Counts per (category, value) whose values of each category add up to `total`,
    which is published whole (the draw's respondents, a theme's size): the small ones, and
    those that would give one away by subtraction, read SUPPRESSED."""
    whole = ("*", "*")
    sums: dict[str, list[tuple[str, str]]] = {}
    for key in cells:
        sums.setdefault(key[0], []).append(key)
    hidden = suppress(
        {**cells, whole: total},
        [(parts, whole) for parts in sums.values()],
        min_cell,
        public=[whole],
    )
    return {key: SUPPRESSED if key in hidden else n for key, n in cells.items()}
