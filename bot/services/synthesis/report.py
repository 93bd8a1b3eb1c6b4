"""The opinion map and the themes written out: Markdown for people, JSON and CSV for other
tools. Participants appear by pseudonym only."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from bot.services.synthesis.opinions import OpinionMap
from bot.services.synthesis.themes import Agreement, Themes

FORMATS = ("md", "json", "csv")


def group_name(group: int) -> str:
    return f"Group {chr(65 + group)}"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def opinions_plain(result: OpinionMap, topic: str = "") -> dict[str, Any]:
    return {
        "topic": topic,
        "participants": len(result.participants),
        "left_out": result.left_out,
        "statements": len(result.statements),
        "explained_variance": [round(v, 4) for v in result.explained],
        "silhouette": None if result.silhouette is None else round(result.silhouette, 4),
        "groups": [
            {
                "group": group_name(g.id),
                "size": len(g.members),
                "members": g.members,
                "representative": [
                    {
                        "statement": s.statement,
                        "text": s.text,
                        "direction": s.direction,
                        "share": round(s.share, 4),
                        "versus_rest": round(s.versus_rest, 3),
                        "z": round(s.z, 3),
                    }
                    for s in g.representative
                ],
            }
            for g in result.groups
        ],
        "consensus": [
            {
                "statement": c.statement,
                "text": c.text,
                "score": round(c.score, 4),
                "agree_by_group": [round(a, 4) for a in c.agree_by_group],
                "common_ground": c.common_ground,
            }
            for c in result.consensus
        ],
        "compared_with_export": None
        if result.agreement_with_theirs is None
        else {"participants": result.compared, "adjusted_rand_index": result.agreement_with_theirs},
    }


def opinions_md(result: OpinionMap, topic: str = "") -> str:
    lines = [f"# Opinion map{': ' + topic if topic else ''}", ""]
    sil = "n/a" if result.silhouette is None else f"{result.silhouette:.2f}"
    lines += [
        f"{len(result.participants)} participants in {len(result.groups)} opinion groups "
        f"(silhouette {sil}); {result.left_out} left out for too few answers; "
        f"{len(result.statements)} statements. The two components explain "
        + " and ".join(_pct(v) for v in result.explained)
        + " of the variance.",
        "",
    ]
    if result.agreement_with_theirs is not None:
        lines += [
            f"Agreement with the export's groups: adjusted Rand index "
            f"{result.agreement_with_theirs:.2f} over {result.compared} participants.",
            "",
        ]
    for g in result.groups:
        lines += [f"## {group_name(g.id)} ({len(g.members)} participants)", ""]
        if not g.representative:
            lines += ["No statement sets this group apart significantly.", ""]
            continue
        lines += ["| Statement | Group | Others (ratio) |", "|---|---|---|"]
        for s in g.representative:
            share = f"{_pct(s.share)} {s.direction}"
            lines.append(f"| {s.statement}. {s.text} | {share} | x{s.versus_rest:.1f} |")
        lines.append("")
    common = [c for c in result.consensus if c.common_ground]
    lines += ["## Common ground", ""]
    if not common:
        lines += ["No statement has at least 60% agreement in every group.", ""]
    else:
        header = " | ".join(group_name(i) for i in range(len(result.groups)))
        lines += [f"| Statement | {header} |", "|---|" + "---|" * len(result.groups)]
        for c in common:
            shares = " | ".join(_pct(a) for a in c.agree_by_group)
            lines.append(f"| {c.statement}. {c.text} | {shares} |")
        lines.append("")
    return "\n".join(lines)


def opinions_csv(result: OpinionMap) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["kind", "group", "statement", "text", "direction", "share", "ratio", "score"])
    for g in result.groups:
        for s in g.representative:
            out.writerow(
                [
                    "representative",
                    group_name(g.id),
                    s.statement,
                    s.text,
                    s.direction,
                    f"{s.share:.4f}",
                    f"{s.versus_rest:.3f}",
                    f"{s.z:.3f}",
                ]
            )
    for c in result.consensus:
        kind = "common_ground" if c.common_ground else "consensus"
        low = min(c.agree_by_group) if c.agree_by_group else 0.0
        out.writerow([kind, "", c.statement, c.text, "agree", f"{low:.4f}", "", f"{c.score:.4f}"])
    return buffer.getvalue()


def opinions(result: OpinionMap, fmt: str, topic: str = "") -> str:
    if fmt == "json":
        return json.dumps(opinions_plain(result, topic), ensure_ascii=False, indent=2)
    if fmt == "csv":
        return opinions_csv(result)
    return opinions_md(result, topic)


def themes_plain(found: list[Themes], scores: list[Agreement | None]) -> list[dict[str, Any]]:
    return [
        {
            "prompt": t.prompt,
            "language": t.language,
            "texts": t.texts,
            "silhouette": None if t.silhouette is None else round(t.silhouette, 4),
            "agreement": None if a is None else {"ari": round(a.ari, 4), "nmi": round(a.nmi, 4)},
            "themes": [
                {
                    "theme": th.id + 1,
                    "size": th.size,
                    "terms": th.terms,
                    "tables": th.tables,
                    "categories": th.categories,
                    "quotes": [{"pseudonym": p, "text": q} for p, q in th.quotes],
                }
                for th in t.themes
            ],
        }
        for t, a in zip(found, scores, strict=True)
    ]


def themes_md(found: list[Themes], scores: list[Agreement | None]) -> str:
    lines = ["# Themes", ""]
    for t, a in zip(found, scores, strict=True):
        lines += [f"## {t.prompt} ({t.language}): {t.texts} contributions, {len(t.themes)} themes"]
        lines.append("")
        if a is not None:
            lines += [f"Agreement with the labels: ARI {a.ari:.2f}, NMI {a.nmi:.2f}.", ""]
        for th in t.themes:
            lines += [f"### Theme {th.id + 1}: {', '.join(th.terms)} ({th.size})", ""]
            if th.tables:
                tables = ", ".join(f"table {k} ({v})" for k, v in th.tables.items())
                lines.append(f"Raised at {tables}.")
            for feature, values in th.categories.items():
                shown = ", ".join(f"{v} ({n})" for v, n in values.items())
                lines.append(f"- {feature}: {shown}")
            lines.append("")
            lines += [f"> {q}  \n> — {p}" for p, q in th.quotes]
            lines.append("")
    return "\n".join(lines)


def themes_csv(found: list[Themes]) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(
        ["prompt", "language", "theme", "size", "terms", "tables", "categories"]
        + ["pseudonym", "quote"]
    )
    for t in found:
        for th in t.themes:
            tables = ";".join(f"{k}:{v}" for k, v in th.tables.items())
            cats = ";".join(
                f"{f}={v}:{n}" for f, values in th.categories.items() for v, n in values.items()
            )
            for p, q in th.quotes or [("", "")]:
                out.writerow(
                    [
                        t.prompt,
                        t.language,
                        th.id + 1,
                        th.size,
                        " ".join(th.terms),
                        tables,
                        cats,
                        p,
                        q,
                    ]
                )
    return buffer.getvalue()


def themes(found: list[Themes], scores: list[Agreement | None], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(themes_plain(found, scores), ensure_ascii=False, indent=2)
    if fmt == "csv":
        return themes_csv(found)
    return themes_md(found, scores)
