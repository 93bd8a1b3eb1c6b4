"""The opinion map and the themes as resources of the open data package.

Participants appear by pseudonym. A group's answer shares are hidden when the group is
smaller than `min_cell`, and so are a theme's counts per quota value (with the ones that
would give them away). Quotes are participants' own words and are published: each is
scrubbed of addresses first (every phone number, e-mail, handle and link, and every
address, handle and non-quota pool value the service holds), as the tables receive them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
from sqlalchemy import select

from bot.services.publish.context import Context
from bot.services.publish.package import Field, Resource
from bot.services.publish.participation import categories
from bot.services.publish.suppression import SUPPRESSED, per_category
from bot.services.synthesis import contributions, conversation, opinions, themes
from flows.deliberation import removed_placeholder
from flows.deliberation_scrub import scrub
from flows.i18n import N_, translator
from store.deliberation import TablePrompt
from store.models import Contact
from store.recruitment import PoolEntry
from store.statements import AGREE, DISAGREE, PASS, Statement

ALL = "(all)"


def letter(group: int) -> str:
    return chr(65 + group)


def categorical(context: Context, quota) -> set[str]:
    """Pool columns that hold categories (quota categories, registration questions),
    not something of one person's own such as a name."""
    asked = {q.id for q in context.assembly.questions} if context.assembly else set()
    return set(quota) | asked


async def known_addresses(session, categorical: set[str]) -> list[str]:
    """Everything the service holds that could name or reach a participant: contact
    addresses, Telegram handles, and pool values outside the categories."""
    known = list((await session.execute(select(Contact.address))).scalars())
    known += [a.lstrip("+") for a in known if a.startswith("+")]
    for handle, attributes in await session.execute(
        select(PoolEntry.telegram_handle, PoolEntry.attributes)
    ):
        known += [handle] if handle else []
        known += [str(v) for k, v in (attributes or {}).items() if k not in categorical and v]
    return known


def scrubbed(text: str, language: str, known: list[str]) -> str:
    return scrub(text, removed_placeholder(translator(language)), known)[0]


async def opinion_map(session, context: Context) -> list[Resource]:
    known = await known_addresses(session, categorical(context, await categories(session, context)))
    conv = await conversation.load(session, context.languages[0])
    texts = {
        s.id: {lang: scrubbed(t, lang, known) for lang, t in (s.texts or {}).items()}
        for s in (await session.execute(select(Statement))).scalars()
        if s.id in conv.statements
    }
    try:
        result = opinions.build(conv)
    except ValueError:
        result = None  # too few answers for groups; the statements and shares in all remain
    statements, shares, people = [], [], []
    consensus = {c.statement: c for c in result.consensus} if result else {}
    representative = (
        {(g.id, s.statement): s.direction for g in result.groups for s in g.representative}
        if result
        else {}
    )
    groups = (
        {p: int(g) for p, g in zip(result.participants, result.labels, strict=True)}
        if result
        else {}
    )
    for sid in sorted(conv.statements):
        c = consensus.get(sid)
        statements.append(
            {
                "statement": sid,
                "text": texts.get(sid, {}),
                "proposed_by_participant": bool(conv.authors.get(sid)),
                "consensus": None if c is None else round(c.score, 4),
                "common_ground": None if c is None else c.common_ground,
            }
        )
        answers = {p: v for (p, s), v in conv.votes.items() if s == sid}
        shares.append(_shares(sid, ALL, answers, len(conv.participants), None, context))
        for g in result.groups if result else []:
            inside = {p: v for p, v in answers.items() if groups.get(p) == g.id}
            direction = representative.get((g.id, sid))
            shares.append(_shares(sid, letter(g.id), inside, len(g.members), direction, context))
    if result is not None:
        for n, p in enumerate(result.participants):
            x, y = (float(v) for v in np.round(result.coordinates[n], 4))
            people.append({"pseudonym": p, "group": letter(groups[p]), "x": x, "y": y})
    return _opinion_resources(statements, shares, people, context)


def _shares(sid, group, answers: dict, members: int, direction, context: Context) -> dict:
    counts = Counter(answers.values())
    seen = len(answers)
    hidden = members < context.min_cell

    def share(vote: int):
        if hidden:
            return SUPPRESSED
        return round(counts[vote] / seen, 4) if seen else None

    return {
        "statement": sid,
        "group": group,
        "members": SUPPRESSED if hidden else members,
        "answered": SUPPRESSED if hidden else seen,
        "agree": share(AGREE),
        "disagree": share(DISAGREE),
        "pass": share(PASS),
        "representative": direction or "",
    }


def _opinion_resources(statements, shares, people, context: Context) -> list[Resource]:
    hidden = f"Groups of fewer than {context.min_cell} read '{SUPPRESSED}'."
    return [
        Resource(
            "opinion_statements",
            N_("The opinion map's statements"),
            "Every statement the panel was asked to agree or disagree with, in each "
            "language; its group-informed consensus (the product of every group's "
            "agreement) and whether it is common ground (at least 60% agree in every group).",
            [
                Field("statement", "integer", "The statement's number.", required=True),
                Field("text", "object", "Its text in each language."),
                Field(
                    "proposed_by_participant",
                    "boolean",
                    "Proposed by a panel member (approved by the organisers).",
                ),
                Field("consensus", "number", "Group-informed consensus, 0 to 1."),
                Field("common_ground", "boolean", "At least 60% agree in every group."),
            ],
            statements,
            ["statement"],
        ),
        Resource(
            "opinion_groups",
            N_("Answers by opinion group"),
            "Per statement, the shares of those who answered it who agreed, disagreed or "
            f"passed, in everyone ('{ALL}') and in each opinion group. {hidden}",
            [
                Field("statement", "integer", "The statement.", required=True),
                Field("group", "string", f"The opinion group (A, B...) or {ALL}.", required=True),
                Field("members", "integer", "People in the group."),
                Field("answered", "integer", "Of them, those who answered this statement."),
                Field("agree", "number", "Share who agreed, 0 to 1."),
                Field("disagree", "number", "Share who disagreed, 0 to 1."),
                Field("pass", "number", "Share who passed, 0 to 1."),
                Field(
                    "representative",
                    "string",
                    "agree or disagree: the statement sets this group apart that way.",
                ),
            ],
            shares,
            ["statement", "group"],
        ),
        Resource(
            "opinion_participants",
            N_("The opinion map"),
            "Each participant with enough answers, by pseudonym: their opinion group and "
            "their place on the map (the two principal components of the answers).",
            [
                Field("pseudonym", "string", "The participant's pseudonym.", required=True),
                Field("group", "string", "Their opinion group.", required=True),
                Field("x", "number", "First component."),
                Field("y", "number", "Second component."),
            ],
            people,
            ["pseudonym"],
        ),
    ]


async def themes_of_tables(session, context: Context) -> list[Resource]:
    quota = await categories(session, context)
    known = await known_addresses(session, categorical(context, quota))
    prompts: dict[str, dict] = {}
    for key, texts in await session.execute(
        select(TablePrompt.prompt_key, TablePrompt.texts).order_by(TablePrompt.id)
    ):
        prompts.setdefault(key, dict(texts or {}))
    rows, quotes = [], []
    for (prompt, language), written in sorted((await contributions.load(session)).items()):
        # The themes are found in the texts with the addresses taken out, so that no
        # word of one (a name, a mail domain) becomes a theme's word either.
        texts = [replace(t, text=scrub(t.text, " ", known)[0]) for t in written]
        shown = {
            (t.author, t.text): scrubbed(w.text, language, known)
            for t, w in zip(texts, written, strict=True)
        }
        try:
            found = themes.find(texts, prompt=prompt, language=language)
        except ValueError:
            continue  # too few texts for themes
        for theme in found.themes:
            rows.append(
                {
                    "prompt": prompt,
                    "prompt_text": prompts.get(prompt, {}),
                    "language": language,
                    "theme": theme.id + 1,
                    "size": theme.size,
                    "words": theme.terms,
                    "tables": {str(k): v for k, v in theme.tables.items()},
                    "categories": _categories(theme, quota, context.min_cell),
                }
            )
            for rank, (pseudonym, text) in enumerate(theme.quotes, start=1):
                quotes.append(
                    {
                        "prompt": prompt,
                        "language": language,
                        "theme": theme.id + 1,
                        "rank": rank,
                        "pseudonym": pseudonym,
                        "quote": shown[(pseudonym, text)],
                    }
                )
    return _theme_resources(rows, quotes, context)


def _categories(theme: themes.Theme, quota: dict[str, list[str]], min_cell: int) -> dict:
    """Contributions per quota value; small counts hidden, and those that would give one
    away against the theme's size (public)."""
    cells = {(f, v): n for f in quota for v, n in theme.categories.get(f, {}).items()}
    out: dict[str, dict] = {}
    for (f, v), n in per_category(cells, theme.size, min_cell).items():
        out.setdefault(f, {})[v] = n
    return out


def _theme_resources(rows, quotes, context: Context) -> list[Resource]:
    return [
        Resource(
            "themes",
            N_("Themes of the small-group discussions"),
            "Per prompt and language, the themes found in what the members wrote at "
            "their tables (TF-IDF, LSA, k-means): size, words, the tables that raised it "
            f"and contributions per quota value (from 1 to {context.min_cell - 1}, and "
            f"those that would give one away, read '{SUPPRESSED}').",
            [
                Field("prompt", "string", "The prompt's id.", required=True),
                Field("prompt_text", "object", "The prompt's question in each language."),
                Field("language", "string", "The language written in.", required=True),
                Field("theme", "integer", "The theme's number, largest first.", required=True),
                Field("size", "integer", "Contributions in it."),
                Field("words", "array", "Its most telling words."),
                Field("tables", "object", "Contributions per table."),
                Field("categories", "object", "Contributions per quota category and value."),
            ],
            rows,
            ["prompt", "language", "theme"],
        ),
        Resource(
            "theme_quotes",
            N_("Quotes of each theme"),
            "The contributions nearest each theme's centre, by pseudonym, in the members' "
            "own words with every address replaced by '[removed]' (in the quote's language).",
            [
                Field("prompt", "string", "The prompt's id.", required=True),
                Field("language", "string", "The language written in.", required=True),
                Field("theme", "integer", "The theme.", required=True),
                Field("rank", "integer", "1 for the nearest its centre.", required=True),
                Field("pseudonym", "string", "Who wrote it."),
                Field("quote", "string", "What they wrote, addresses removed."),
            ],
            quotes,
            ["prompt", "language", "theme", "rank"],
        ),
    ]
