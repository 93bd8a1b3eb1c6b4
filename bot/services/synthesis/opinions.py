"""The opinion map, the way Pol.is makes it: the participant x statement matrix (agree 1,
disagree -1, pass 0, unseen empty), reduced to two dimensions by PCA, opinion groups found
by k-means with the number of groups chosen by silhouette, what sets each group apart
(representative statements, Pol.is's test of proportions) and what every group supports
(group-informed consensus; common ground where enough of every group agrees).

Pure: numbers in, numbers out. Where the votes come from is `conversation.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score

MIN_VOTES = 7  # Pol.is leaves out of the groups whoever answered fewer statements
MAX_GROUPS = 5
Z_90 = 1.2816  # one-sided 90%: what Pol.is calls significant
COMMON_GROUND = 0.6  # at least this share agrees in every group
REPRESENTATIVE = 5  # statements shown per group
SEED = 0  # k-means starts: the same votes give the same map


@dataclass
class Conversation:
    """Statements (id -> text), participants and their answers, and the groups another
    tool found (a Pol.is export's group-id), if any."""

    statements: dict[int, str]
    votes: dict[tuple[str, int], int]  # (participant, statement) -> 1 | -1 | 0
    topic: str = ""
    authors: dict[int, str] = field(default_factory=dict)  # statement -> participant
    moderated: dict[int, int] = field(default_factory=dict)  # 1 in, 0 unmoderated, -1 out
    their_groups: dict[str, int] = field(default_factory=dict)

    @property
    def participants(self) -> list[str]:
        return sorted({p for p, _ in self.votes}, key=_natural)


def _natural(key: str) -> tuple:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


@dataclass
class StatementScore:
    statement: int
    text: str
    direction: str  # agree | disagree
    share: float  # of the group who answered it
    versus_rest: float  # how many times more than everyone else
    z: float


@dataclass
class Group:
    id: int
    members: list[str]
    representative: list[StatementScore]


@dataclass
class Consensus:
    statement: int
    text: str
    score: float  # Pol.is's group-informed consensus: the product of groups' agreement
    agree_by_group: list[float]  # share agreeing in each group
    common_ground: bool


@dataclass
class OpinionMap:
    participants: list[str]  # in the groups (enough answers)
    left_out: int  # too few answers
    statements: list[int]
    coordinates: np.ndarray  # participants x 2
    labels: np.ndarray  # group of each participant
    explained: list[float]  # variance each component explains
    silhouette: float | None
    groups: list[Group]
    consensus: list[Consensus]
    agreement_with_theirs: float | None = None  # adjusted Rand index, when they had groups
    compared: int = 0  # participants in both


def matrix(conv: Conversation) -> tuple[list[str], list[int], np.ndarray]:
    people = conv.participants
    statements = [s for s in sorted(conv.statements) if conv.moderated.get(s, 1) >= 0]
    row = {p: i for i, p in enumerate(people)}
    col = {s: j for j, s in enumerate(statements)}
    m = np.full((len(people), len(statements)), np.nan)
    for (p, s), vote in conv.votes.items():
        if s in col:
            m[row[p], col[s]] = vote
    return people, statements, m


def build(conv: Conversation, *, max_groups: int = MAX_GROUPS) -> OpinionMap:
    people, statements, m = matrix(conv)
    answered = (~np.isnan(m)).sum(axis=1)
    keep = answered >= min(MIN_VOTES, len(statements))
    kept = [p for p, k in zip(people, keep, strict=True) if k]
    if len(kept) < 4 or len(statements) < 2:
        raise ValueError(
            f"Too few answers for a map: {len(kept)} participants with enough answers "
            f"and {len(statements)} statements (at least 4 and 2 are needed)."
        )
    votes = m[keep]
    # Unseen statements take the statement's mean, as in Pol.is: no pull either way.
    seen = ~np.isnan(votes)
    means = np.where(seen, votes, 0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
    filled = np.where(np.isnan(votes), means, votes)
    pca = PCA(n_components=2, random_state=SEED)
    xy = pca.fit_transform(filled)
    labels, silhouette = _groups(xy, max_groups)
    groups = [
        Group(g, [p for p, lab in zip(kept, labels, strict=True) if lab == g], [])
        for g in range(labels.max() + 1)
    ]
    texts = [conv.statements[s] for s in statements]
    for group in groups:
        group.representative = representative(votes, labels, group.id, statements, texts)
    result = OpinionMap(
        participants=kept,
        left_out=len(people) - len(kept),
        statements=statements,
        coordinates=xy,
        labels=labels,
        explained=[float(v) for v in pca.explained_variance_ratio_],
        silhouette=silhouette,
        groups=groups,
        consensus=consensus(votes, labels, statements, texts),
    )
    compare(result, conv.their_groups)
    return result


def _groups(xy: np.ndarray, max_groups: int) -> tuple[np.ndarray, float | None]:
    """k-means for k = 2..max_groups; the k with the best silhouette."""
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, min(max_groups, len(xy) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(xy)
        if len(set(labels)) < 2:
            continue
        score = float(silhouette_score(xy, labels))
        if best is None or score > best[0]:
            best = (score, labels)
    if best is None:
        return np.zeros(len(xy), dtype=int), None
    return _by_size(best[1]), best[0]


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Group 0 is the largest: the same map numbers its groups the same way."""
    order = sorted(set(labels), key=lambda g: (-(labels == g).sum(), g))
    rename = {old: new for new, old in enumerate(order)}
    return np.array([rename[g] for g in labels])


def _counts(votes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    part = votes[rows]
    return (part == 1).sum(axis=0), (part == -1).sum(axis=0), (~np.isnan(part)).sum(axis=0)


def _z_one(successes: float, seen: float) -> float:
    """Pol.is's test that a proportion is above one half."""
    return 2 * math.sqrt(seen + 1) * ((successes + 1) / (seen + 1) - 0.5)


def _z_two(s1: float, n1: float, s2: float, n2: float) -> float:
    """Two proportions, pseudo-counts added as Pol.is does."""
    p1, p2 = (s1 + 1) / (n1 + 2), (s2 + 1) / (n2 + 2)
    pooled = (s1 + s2 + 1) / (n1 + n2 + 2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / (n1 + 2) + 1 / (n2 + 2)))
    return (p1 - p2) / spread if spread else 0.0


def representative(
    votes: np.ndarray, labels: np.ndarray, group: int, statements: list[int], texts: list[str]
) -> list[StatementScore]:
    """The statements a group agrees (or disagrees) with significantly more than the rest."""
    inside, outside = labels == group, labels != group
    agree_in, disagree_in, seen_in = _counts(votes, inside)
    agree_out, disagree_out, seen_out = _counts(votes, outside)
    found: list[tuple[float, StatementScore]] = []
    for j, sid in enumerate(statements):
        best = None
        for direction, s_in, s_out in (
            ("agree", agree_in[j], agree_out[j]),
            ("disagree", disagree_in[j], disagree_out[j]),
        ):
            share = (1 + s_in) / (2 + seen_in[j])
            rest = (1 + s_out) / (2 + seen_out[j])
            z_share = _z_one(s_in, seen_in[j])
            z_rest = _z_two(s_in, seen_in[j], s_out, seen_out[j])
            if z_share < Z_90 or z_rest < Z_90:
                continue
            metric = share * (share / rest) * z_share * z_rest
            score = StatementScore(sid, texts[j], direction, share, share / rest, z_rest)
            if best is None or metric > best[0]:
                best = (metric, score)
        if best is not None:
            found.append(best)
    found.sort(key=lambda pair: -pair[0])
    return [score for _, score in found[:REPRESENTATIVE]]


def consensus(
    votes: np.ndarray, labels: np.ndarray, statements: list[int], texts: list[str]
) -> list[Consensus]:
    """Every statement by group-informed consensus, highest first."""
    groups = sorted(set(labels))
    by_group = [_counts(votes, labels == g) for g in groups]
    out = []
    for j, sid in enumerate(statements):
        score = 1.0
        shares = []
        for agree, _, seen in by_group:
            score *= (1 + agree[j]) / (2 + seen[j])
            shares.append(float(agree[j] / seen[j]) if seen[j] else 0.0)
        common = all(s >= COMMON_GROUND for s in shares)
        out.append(Consensus(sid, texts[j], score, shares, common))
    out.sort(key=lambda c: -c.score)
    return out


def compare(result: OpinionMap, theirs: dict[str, int]) -> None:
    """How close our groups come to another tool's (adjusted Rand index: 1 the same,
    about 0 no better than chance)."""
    both = [(p, lab) for p, lab in zip(result.participants, result.labels, strict=True)]
    both = [(theirs[p], int(lab)) for p, lab in both if p in theirs]
    result.compared = len(both)
    if len(both) >= 2:
        result.agreement_with_theirs = float(
            adjusted_rand_score([a for a, _ in both], [b for _, b in both])
        )
