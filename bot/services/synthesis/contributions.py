"""What the small groups wrote, as texts for the themes: members' messages (not passes,
not facilitators' posts, not hidden or erased ones), per prompt and language, each with
its author's pseudonym, table and quota categories (pool attributes and registration
answers, as the draw reads them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.synthesis.themes import Text
from store.deliberation import MESSAGE, Contribution
from store.recruitment import draw_candidates


async def load(
    session: AsyncSession, *, prompt: str | None = None, language: str | None = None
) -> dict[tuple[str, str], list[Text]]:
    """(prompt, language) -> texts, in the order written."""
    query = (
        select(Contribution)
        .where(
            Contribution.kind == MESSAGE,
            Contribution.participant_id.is_not(None),
            Contribution.hidden_at.is_(None),
        )
        .order_by(Contribution.id)
    )
    if prompt:
        query = query.where(Contribution.prompt_key == prompt)
    if language:
        query = query.where(Contribution.language == language)
    rows = [c for c in (await session.execute(query)).scalars() if (c.text or "").strip()]
    features = {c["participant_id"]: c["features"] for c in await draw_candidates(session)}
    out: dict[tuple[str, str], list[Text]] = {}
    for c in rows:
        out.setdefault((c.prompt_key, c.language), []).append(
            Text(
                id=c.id,
                author=c.participant_id or "",
                text=c.text or "",
                table=c.table_no,
                categories={k: str(v) for k, v in features.get(c.participant_id, {}).items()},
            )
        )
    return out
