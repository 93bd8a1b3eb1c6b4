"""`concorder recommendation`: the assembly's recommendations and the commissioning
authority's responses (display only; the work is bot.services.recommendations)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path

import typer
from rich.table import Table

from bot.cli.common import console, err, with_relay
from bot.services import recommendations as recs
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.recommendations import RESPONSE_STATUSES

DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
RECOMMENDATIONS_FILE = typer.Argument(
    ...,
    help="A TOML file of [\\[recommendations]]: id, title and text in every language, "
    "and the ballot that adopted each (optional).",
)
RESPONSE_FILE = typer.Option(
    None,
    "--file",
    help="The response's text in every language: TOML (text = { en = ..., fr = ... }, "
    "and status, date) or Markdown (a '## en' heading before each language's text).",
)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="The assembly's recommendations and the authority's responses to them.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="recommendation")
    group.command("add")(add)
    group.command("list")(list_)
    group.command("respond")(respond)
    group.command("show")(show)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(code)


def _languages(settings: Settings) -> list[str]:
    """The assembly's languages (every text must be in each), else every shipped one."""
    if not settings.assembly_file:
        return list(shipped_languages())
    from bot.cli.recruitment import assembly_or_exit

    return list(assembly_or_exit(None, settings).languages)


def _file_problems(exc: recs.RecommendationError) -> typer.Exit:
    err.print(f"[red]{exc.path} cannot be used:[/]")
    for problem in exc.problems:
        err.print(f"  - {problem}", highlight=False)
    return typer.Exit(2)


def _run(settings: Settings, work):
    try:
        return asyncio.run(with_relay(settings, work))
    except recs.RecommendationProblem as problem:
        raise _fail(str(problem)) from None


def add(
    file: Path = RECOMMENDATIONS_FILE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Record the assembly's final recommendations, numbered in the file's order."""
    settings = Settings()
    try:
        found = recs.load_recommendations(file, _languages(settings))
    except recs.RecommendationError as exc:
        raise _file_problems(exc) from None

    async def work(relay):
        async with relay.sessions.begin() as session:
            return await recs.add(session, found, dry_run=dry_run)

    rows = _run(settings, work)
    table = Table("#", "id", "title", "ballot", title="Recommendations")
    for row in rows:
        table.add_row(str(row.number), row.id, _first(row.title), row.ballot_id or "-")
    console.print(table)
    if dry_run:
        console.print("[yellow]Dry run: nothing stored.[/]")
    else:
        console.print(f"Recorded {len(rows)} recommendation(s).")


def _first(texts: dict[str, str], language: str = "en") -> str:
    return texts.get(language) or next(iter(texts.values()), "")


def _ballot_cell(summary) -> str:
    if summary is None:
        return "-"
    if summary["status"] != "closed" or "voted" not in summary:
        return f"{summary['id']} ({summary['status']})"
    winners = ", ".join(summary["winners"]) or "no winner"
    return f"{summary['id']}: {winners} ({summary['voted']}/{summary['voters']} voted)"


def list_(
    language: str = typer.Option("en", "--language", help="Show titles in this language."),
) -> None:
    """The tracker: every recommendation, its vote and the authority's latest response."""
    settings = Settings()

    async def work(relay):
        async with relay.sessions() as session:
            return await recs.tracker(session)

    tracked = _run(settings, work)
    if not tracked:
        console.print("No recommendations yet: `concorder recommendation add FILE`.")
        return
    table = Table("#", "id", "title", "vote", "response", "date", "versions", title="Tracker")
    for item in tracked:
        r = item.recommendation
        table.add_row(
            str(r.number),
            r.id,
            _first(r.title, language),
            _ballot_cell(item.ballot),
            item.status,
            str(item.responded_on or "-"),
            str(len(item.responses)),
        )
    console.print(table)


def show(
    recommendation_id: str = typer.Argument(..., metavar="ID"),
    language: str = typer.Option("en", "--language", help="Show texts in this language."),
) -> None:
    """One recommendation: its text, its vote and every response version."""
    settings = Settings()

    async def work(relay):
        async with relay.sessions() as session:
            await recs.get(session, recommendation_id)
            return next(
                t for t in await recs.tracker(session) if t.recommendation.id == recommendation_id
            )

    item = _run(settings, work)
    r = item.recommendation
    console.print(f"[bold]{r.number}. {_first(r.title, language)}[/] ({r.id})")
    console.print(_first(r.text, language), highlight=False)
    console.print(f"Vote: {_ballot_cell(item.ballot)}")
    if not item.responses:
        console.print("No response from the authority yet.")
        return
    table = Table("version", "status", "date", "text", "members told", title="Responses")
    for response in item.responses:
        table.add_row(
            str(response.version),
            response.status,
            str(response.responded_on),
            _first(response.text, language),
            str(response.recipients),
        )
    console.print(table)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise _fail(f"--date {value!r}: write it as YYYY-MM-DD", 2) from None


def respond(
    recommendation_id: str = typer.Argument(..., metavar="ID"),
    status: str = typer.Option(
        None, "--status", help=f"The authority's position: {', '.join(RESPONSE_STATUSES)}."
    ),
    on: str = typer.Option(None, "--date", help="The date of the authority's response."),
    file: Path = RESPONSE_FILE,
    text: str = typer.Option(None, "--text", help="The text, for an assembly of one language."),
    replaces: int = typer.Option(
        None, "--replaces", help="The version this response replaces (when one is recorded)."
    ),
    dry_run: bool = DRY_RUN,
) -> None:
    """Record the authority's response and tell every confirmed panel member, in their
    language (outside their quiet hours)."""
    settings = Settings()
    languages = _languages(settings)
    try:
        given = recs.load_response(file, languages) if file else recs.spec.ResponseDef()
        response = recs.response_of(given, status, _date(on), text, languages)
    except recs.RecommendationError as exc:
        raise _file_problems(exc) from None
    done = _run(
        settings,
        lambda relay: recs.respond(
            relay, recommendation_id, response, replaces=replaces, dry_run=dry_run
        ),
    )
    table = Table("channel", "members", title=f"{recommendation_id}: response v{done.version}")
    for channel, count in sorted(done.by_channel.items()):
        table.add_row(channel, str(count))
    table.add_row("not reachable (opted out, no contact)", str(done.not_reached))
    console.print(table)
    console.print(
        f"{done.messages} message(s), {done.sms_segments} SMS segment(s); "
        f"{done.held} wait for the end of quiet hours."
    )
    for language, sample in sorted(done.samples.items()):
        console.print(f"[bold]{language}[/]: {sample}", highlight=False)
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded, nobody told.[/]")
    else:
        console.print(f"Recorded; {done.recipients} panel member(s) will be told.")
