"""Small-group tables for deliberation: pure allocation, no I/O, no clock.

Input: the confirmed panel (pseudonymous id, language, quota category values), a table
size, a number of rounds, a seed and the organisers' pins. Output: per round, the tables
(each a tuple of ids in letter order: the first is Member A).

Objective (lower is better), summed over rounds:
- mix: per table and quota category value, (count - expected)^2, where expected is the
  value's share of the table's block (its language, or the whole panel) times the table's
  size;
- repeats: for every pair of members, the times they share a table beyond the first.
score = mix + REPEAT_WEIGHT * repeats.

Ours is a seeded local search (pair swaps inside a block and round, kept when the score
does not rise) from the best of 100 shuffles. Two baselines are computed from the same
seed for comparison: one random allocation, and the best of 100 random shuffles per round
by the same score (as the Sortition Foundation's GroupSelect does). Randomness comes from
a small generator of our own (splitmix64), so the same inputs and seed give the same
tables on any machine and Python version.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

ALGORITHM = "swap-search-1"
# One repeat meeting weighs as much as a table two people off its even share of one value.
REPEAT_WEIGHT = 4.0
SHUFFLES = 100
MIN_SIZE, MAX_SIZE = 2, 12
MASK = (1 << 64) - 1


class AllocationError(ValueError):
    """The inputs cannot make tables; the message says why in the organiser's words."""


# ------------------------------------------------------------------------ inputs, outputs


@dataclass(frozen=True)
class Member:
    id: str
    language: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pin:
    """The organisers' choice: `member` sits at `table` (in `round`, or every round)."""

    member: str
    table: int
    round: int | None = None


@dataclass(frozen=True)
class Problem:
    members: tuple[Member, ...]
    categories: tuple[str, ...]
    size: int
    rounds: int
    seed: str
    pins: tuple[Pin, ...] = ()
    mix_languages: bool = False

    def canonical(self) -> dict[str, Any]:
        """Plain data, in one order, that `problem_from` reads back: what is recorded."""
        return {
            "members": [
                {
                    "id": m.id,
                    "language": m.language,
                    "attributes": {c: m.attributes.get(c, "") for c in self.categories},
                }
                for m in sorted(self.members, key=lambda m: m.id)
            ],
            "categories": sorted(self.categories),
            "size": self.size,
            "rounds": self.rounds,
            "seed": self.seed,
            "pins": [
                [p.member, p.table, p.round]
                for p in sorted(self.pins, key=lambda p: (p.member, p.round or 0, p.table))
            ],
            "mix_languages": self.mix_languages,
            "algorithm": ALGORITHM,
        }


def problem_from(data: dict[str, Any]) -> Problem:
    if data.get("algorithm", ALGORITHM) != ALGORITHM:
        raise AllocationError(f"recorded with algorithm {data['algorithm']!r}, not {ALGORITHM!r}")
    return Problem(
        members=tuple(
            Member(m["id"], m["language"], dict(m["attributes"])) for m in data["members"]
        ),
        categories=tuple(data["categories"]),
        size=data["size"],
        rounds=data["rounds"],
        seed=data["seed"],
        pins=tuple(Pin(m, t, r) for m, t, r in data["pins"]),
        mix_languages=data["mix_languages"],
    )


def sha256_of(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


Tables = tuple[tuple[str, ...], ...]  # one round: table -> member ids, in letter order


@dataclass(frozen=True)
class Quality:
    score: float
    mix: float  # sum of squared deviations from an even mix
    max_deviation: float  # the largest |count - expected| at any table, any value
    repeats: int  # pairs meeting again, counted once per meeting after their first

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 6),
            "mix": round(self.mix, 6),
            "max_deviation": round(self.max_deviation, 6),
            "repeats": self.repeats,
        }


@dataclass(frozen=True)
class Allocation:
    rounds: tuple[Tables, ...]
    quality: Quality

    def plain(self) -> list[list[list[str]]]:
        return [[list(table) for table in tables] for tables in self.rounds]


@dataclass(frozen=True)
class Comparison:
    ours: Allocation
    random: Allocation
    best_of_shuffles: Allocation
    layout: Layout


def letter(index: int) -> str:
    return string.ascii_uppercase[index] if index < 26 else f"Z{index - 25}"


# ------------------------------------------------------------------------------ randomness


class Rng:
    """splitmix64: tiny, fast enough, and the same sequence everywhere."""

    def __init__(self, seed: str, stream: str = ""):
        digest = hashlib.sha256(f"{stream}\x00{seed}".encode()).digest()
        self.state = int.from_bytes(digest[:8], "big")

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in [0, n), without modulo bias."""
        limit = MASK - (MASK % n)
        while True:
            value = self.next()
            if value < limit:
                return value % n

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


# ------------------------------------------------------------------------------ the layout


@dataclass(frozen=True)
class Block:
    """People who may share tables (one language, or everyone), and their tables."""

    name: str
    members: tuple[int, ...]  # indexes into the problem's members
    tables: tuple[int, ...]  # table indexes (0-based)


@dataclass(frozen=True)
class Layout:
    ids: tuple[str, ...]
    sizes: tuple[int, ...]  # per table
    blocks: tuple[Block, ...]
    block_of_table: tuple[int, ...]
    values: tuple[tuple[int, ...], ...]  # per member, per category: value index
    expected: tuple[tuple[tuple[float, ...], ...], ...]  # table -> category -> value -> count
    pinned: tuple[dict[int, int], ...]  # per round: member index -> table index

    @property
    def table_count(self) -> int:
        return len(self.sizes)


def _table_sizes(people: int, size: int) -> list[int]:
    count = max(1, -(-people // size))
    return [people // count + (1 if i < people % count else 0) for i in range(count)]


def layout_of(problem: Problem) -> Layout:
    _check(problem)
    members = sorted(problem.members, key=lambda m: m.id)
    ids = tuple(m.id for m in members)
    by_block: dict[str, list[int]] = {}
    for index, member in enumerate(members):
        by_block.setdefault("all" if problem.mix_languages else member.language, []).append(index)
    sizes: list[int] = []
    blocks: list[Block] = []
    block_of_table: list[int] = []
    for name in sorted(by_block):
        people = by_block[name]
        first = len(sizes)
        for size in _table_sizes(len(people), problem.size):
            sizes.append(size)
            block_of_table.append(len(blocks))
        blocks.append(Block(name, tuple(people), tuple(range(first, len(sizes)))))
    categories = sorted(problem.categories)
    names = [sorted({m.attributes.get(c, "") for m in members}) for c in categories]
    values = tuple(
        tuple(names[k].index(m.attributes.get(c, "")) for k, c in enumerate(categories))
        for m in members
    )
    expected = []
    for table, size in enumerate(sizes):
        people = blocks[block_of_table[table]].members
        per_category = []
        for k in range(len(categories)):
            counts = [0] * len(names[k])
            for person in people:
                counts[values[person][k]] += 1
            per_category.append(tuple(size * c / len(people) for c in counts))
        expected.append(tuple(per_category))
    return Layout(
        ids,
        tuple(sizes),
        tuple(blocks),
        tuple(block_of_table),
        values,
        tuple(expected),
        _pins(problem, ids, sizes, blocks, block_of_table),
    )


def _check(problem: Problem) -> None:
    if not problem.members:
        raise AllocationError("Nobody to seat: the confirmed panel is empty.")
    if not MIN_SIZE <= problem.size <= MAX_SIZE:
        raise AllocationError(f"A table of {problem.size}? Choose {MIN_SIZE} to {MAX_SIZE}.")
    if problem.rounds < 1:
        raise AllocationError("At least one round.")
    seen = [m.id for m in problem.members]
    if len(set(seen)) != len(seen):
        raise AllocationError("A member is listed twice.")


def _pins(
    problem: Problem,
    ids: tuple[str, ...],
    sizes: list[int],
    blocks: list[Block],
    block_of_table: list[int],
) -> tuple[dict[int, int], ...]:
    index = {pid: i for i, pid in enumerate(ids)}
    rounds: list[dict[int, int]] = [{} for _ in range(problem.rounds)]
    for pin in problem.pins:
        if pin.member not in index:
            raise AllocationError(f"Pinned {pin.member}, who is not on the confirmed panel.")
        if not 1 <= pin.table <= len(sizes):
            raise AllocationError(
                f"Pinned {pin.member} to table {pin.table}: tables are 1-{len(sizes)}."
            )
        if pin.round is not None and not 1 <= pin.round <= problem.rounds:
            raise AllocationError(
                f"Pinned {pin.member} in round {pin.round}: rounds are 1-{problem.rounds}."
            )
        person, table = index[pin.member], pin.table - 1
        if person not in blocks[block_of_table[table]].members:
            raise AllocationError(
                f"Pinned {pin.member} to table {pin.table}, a table of another language "
                "(set [groups] mix_languages = true in the assembly file to mix them)."
            )
        for r in [pin.round - 1] if pin.round else range(problem.rounds):
            if rounds[r].get(person, table) != table:
                raise AllocationError(f"{pin.member} is pinned to two tables in round {r + 1}.")
            rounds[r][person] = table
    for r, pins in enumerate(rounds):
        for table, size in enumerate(sizes):
            count = sum(1 for t in pins.values() if t == table)
            if count > size:
                raise AllocationError(
                    f"Round {r + 1}: {count} people pinned to table {table + 1}, "
                    f"which seats {size}."
                )
    return tuple(rounds)


# ------------------------------------------------------------------------- the state, scores


class Seating:
    """Every round's tables, with the counts the score needs, kept up to date by swaps."""

    def __init__(self, layout: Layout, rounds: list[list[list[int]]]):
        self.layout = layout
        self.tables = rounds  # round -> table -> member indexes
        n = len(layout.ids)
        self.where = [[0] * n for _ in rounds]
        self.counts = [
            [[[0] * len(e) for e in layout.expected[t]] for t in range(layout.table_count)]
            for _ in rounds
        ]
        self.met = [[0] * n for _ in range(n)]
        for r, tables in enumerate(rounds):
            for t, people in enumerate(tables):
                self._add_round_table(r, t, people)

    def _add_round_table(self, r: int, t: int, people: list[int]) -> None:
        for person in people:
            self.where[r][person] = t
            for k, v in enumerate(self.layout.values[person]):
                self.counts[r][t][k][v] += 1
        for a, b in combinations(people, 2):
            self.met[a][b] += 1
            self.met[b][a] += 1

    def quality(self) -> Quality:
        mix, worst = 0.0, 0.0
        for per_round in self.counts:
            for t, per_table in enumerate(per_round):
                for k, per_category in enumerate(per_table):
                    for v, count in enumerate(per_category):
                        gap = count - self.layout.expected[t][k][v]
                        mix += gap * gap
                        worst = max(worst, abs(gap))
        n = len(self.layout.ids)
        repeats = sum(max(0, self.met[a][b] - 1) for a in range(n) for b in range(a + 1, n))
        return Quality(mix + REPEAT_WEIGHT * repeats, mix, worst, repeats)

    def swap_delta(self, r: int, a: int, b: int) -> float:
        """The score's change if a and b (at different tables of round r) swapped."""
        ta, tb = self.where[r][a], self.where[r][b]
        delta = 0.0
        counts, expected = self.counts[r], self.layout.expected
        for k, (va, vb) in enumerate(
            zip(self.layout.values[a], self.layout.values[b], strict=True)
        ):
            if va == vb:
                continue
            for t, gone, come in ((ta, va, vb), (tb, vb, va)):
                g = counts[t][k][gone] - expected[t][k][gone]
                c = counts[t][k][come] - expected[t][k][come]
                delta += (g - 1) ** 2 - g * g + (c + 1) ** 2 - c * c
        repeats = 0
        met_a, met_b = self.met[a], self.met[b]
        for x in self.tables[r][ta]:
            if x != a:
                repeats -= met_a[x] >= 2
                repeats += met_b[x] >= 1
        for x in self.tables[r][tb]:
            if x != b:
                repeats -= met_b[x] >= 2
                repeats += met_a[x] >= 1
        return delta + REPEAT_WEIGHT * repeats

    def swap(self, r: int, a: int, b: int) -> None:
        ta, tb = self.where[r][a], self.where[r][b]
        for person, old, new in ((a, ta, tb), (b, tb, ta)):
            table = self.tables[r][old]
            for x in table:
                if x != person:
                    self.met[person][x] -= 1
                    self.met[x][person] -= 1
            for k, v in enumerate(self.layout.values[person]):
                self.counts[r][old][k][v] -= 1
                self.counts[r][new][k][v] += 1
            table.remove(person)
        for person, new in ((a, tb), (b, ta)):
            for x in self.tables[r][new]:
                self.met[person][x] += 1
                self.met[x][person] += 1
            self.tables[r][new].append(person)
            self.where[r][person] = new


# --------------------------------------------------------------------------- allocations


def _random_round(layout: Layout, r: int, rng: Rng) -> list[list[int]]:
    """One round's tables at random, pins first."""
    tables: list[list[int]] = [[] for _ in layout.sizes]
    pinned = layout.pinned[r]
    for person, table in sorted(pinned.items()):
        tables[table].append(person)
    for block in layout.blocks:
        free = [p for p in block.members if p not in pinned]
        rng.shuffle(free)
        for table in block.tables:
            take = layout.sizes[table] - len(tables[table])
            tables[table].extend(free[:take])
            free = free[take:]
    return tables


def _movable(layout: Layout) -> list[list[list[int]]]:
    """Per round, per block: the members no pin holds (the ones a swap may move)."""
    return [
        [[p for p in block.members if p not in pins] for block in layout.blocks]
        for pins in layout.pinned
    ]


def _finish(layout: Layout, seating: Seating, rng: Rng) -> Allocation:
    """Letters drawn at random inside each table, so a letter says nothing about anyone."""
    rounds = []
    for tables in seating.tables:
        done = []
        for people in tables:
            order = sorted(people)
            rng.shuffle(order)
            done.append(tuple(layout.ids[p] for p in order))
        rounds.append(tuple(done))
    return Allocation(tuple(rounds), seating.quality())


def random_allocation(layout: Layout, seed: str) -> Allocation:
    rng = Rng(seed, "random")
    rounds = [_random_round(layout, r, rng) for r in range(len(layout.pinned))]
    return _finish(layout, Seating(layout, rounds), rng)


def _round_score(layout: Layout, met: list[list[int]], r: int, tables: list[list[int]]) -> float:
    """One round's share of the score, given who met in the rounds before (`met`)."""
    score = 0.0
    for t, people in enumerate(tables):
        for k, expected in enumerate(layout.expected[t]):
            counts = [0] * len(expected)
            for person in people:
                counts[layout.values[person][k]] += 1
            score += sum((c - e) ** 2 for c, e in zip(counts, expected, strict=True))
        repeats = sum(1 for a, b in combinations(people, 2) if met[a][b])
        score += REPEAT_WEIGHT * repeats
    return score


def _best_of_shuffles(layout: Layout, rng: Rng, shuffles: int) -> list[list[list[int]]]:
    n = len(layout.ids)
    met = [[0] * n for _ in range(n)]
    chosen: list[list[list[int]]] = []
    for r in range(len(layout.pinned)):
        best, best_score = None, None
        for _ in range(shuffles):
            tables = _random_round(layout, r, rng)
            score = _round_score(layout, met, r, tables)
            if best_score is None or score < best_score:
                best, best_score = tables, score
        chosen.append(best or [])
        for people in best or []:
            for a, b in combinations(people, 2):
                met[a][b] += 1
                met[b][a] += 1
    return chosen


def best_of_shuffles(layout: Layout, seed: str, shuffles: int = SHUFFLES) -> Allocation:
    """Round by round, the best of `shuffles` random tables given the rounds before."""
    rng = Rng(seed, "shuffles")
    return _finish(layout, Seating(layout, _best_of_shuffles(layout, rng, shuffles)), rng)


def _climb(layout: Layout, seating: Seating, rng: Rng, sweeps: int) -> Seating:
    movable = _movable(layout)
    choices = [
        (r, people)
        for r, per_block in enumerate(movable)
        for b, people in enumerate(per_block)
        if len(people) > 1 and len(layout.blocks[b].tables) > 1
    ]
    if not choices:
        return seating
    for _ in range(sweeps * len(layout.ids) * len(layout.pinned)):
        r, people = choices[rng.below(len(choices))]
        a = people[rng.below(len(people))]
        b = people[rng.below(len(people))]
        if seating.where[r][a] != seating.where[r][b] and seating.swap_delta(r, a, b) <= 1e-9:
            seating.swap(r, a, b)
    return seating


def search(layout: Layout, seed: str, sweeps: int = 200, starts_more: int = 1) -> Allocation:
    """Seeded local search: from the best of 100 shuffles (the baseline's own tables, so
    never worse than it) and from `starts_more` random tables, try swaps of two members
    of one block at different tables of one round; keep a swap when the score does not
    rise (moving sideways lets it leave plateaus); the best climb wins. The number of
    tries is fixed by the panel's size, never by the clock, so the result is the same
    everywhere."""
    rng = Rng(seed, "search")
    starts = [
        _best_of_shuffles(layout, Rng(seed, "shuffles"), SHUFFLES),
        *(
            [_random_round(layout, r, rng) for r in range(len(layout.pinned))]
            for _ in range(starts_more)
        ),
    ]
    seating = min(
        (_climb(layout, Seating(layout, start), rng, sweeps) for start in starts),
        key=lambda s: s.quality().score,
    )
    return _finish(layout, seating, rng)


def allocate(problem: Problem) -> Comparison:
    """Ours and both baselines, from the same inputs and seed."""
    layout = layout_of(problem)
    return Comparison(
        ours=search(layout, problem.seed),
        random=random_allocation(layout, problem.seed),
        best_of_shuffles=best_of_shuffles(layout, problem.seed),
        layout=layout,
    )


# ---------------------------------------------------------------------- reading tables


def mix_of(
    table: Sequence[str], members: dict[str, Member], categories: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Per category, how many at this table have each value."""
    mix: dict[str, dict[str, int]] = {}
    for category in sorted(categories):
        counts: dict[str, int] = {}
        for pid in table:
            value = members[pid].attributes.get(category, "")
            counts[value] = counts.get(value, 0) + 1
        mix[category] = dict(sorted(counts.items()))
    return mix


def repeats_at(rounds: Sequence[Sequence[Sequence[str]]], r: int, t: int) -> list[tuple[str, str]]:
    """Pairs at table t of round r (0-based) who already shared a table in an earlier round."""
    earlier = {
        frozenset(pair)
        for tables in rounds[:r]
        for table in tables
        for pair in combinations(table, 2)
    }
    return sorted(
        tuple(sorted(pair)) for pair in combinations(rounds[r][t], 2) if frozenset(pair) in earlier
    )
