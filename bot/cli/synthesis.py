"""`concorder statements` (the opinion map's statements: add, list, approve, reject, send)
and `concorder synthesize` (the opinion map and the themes). Display only: the work is
bot.services.synthesis. The analysis (numpy, scikit-learn, matplotlib) is imported by the
`synthesize` commands only, so every other command, `serve` included, starts as fast."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import typer
from rich.table import Table

from bot.cli.common import console, err, with_database, with_relay
from bot.services.synthesis import records
from bot.services.synthesis.records import StatementProblem
from bot.settings import Settings
from store.statements import APPROVED, PROPOSED, REJECTED

DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
TRANSLATION = typer.Option(
    None, "--translation", "-t", help="LANG=TEXT: the statement in another language (repeat)."
)
FORMATS = ("md", "json", "csv")
MAX_GROUPS = 5  # bot.services.synthesis.MAX_GROUPS
FORMAT = typer.Option("md", "--format", help="md, json or csv.")
OUT = typer.Option(None, "--out", "-o", help="Write the report to this file (default: show it).")
LABELLED = typer.Option(
    None,
    "--labelled",
    help="A labelled CSV (language, topic, text) to cluster instead, "
    "printing how far the themes agree with its topics (ARI, NMI).",
)
CHART = typer.Option(None, "--chart", help="Draw the map: a .png or .svg file.")
EXPORT_POLIS = typer.Option(
    None,
    "--export-polis",
    help="Write the conversation and our groups in Pol.is's export layout to this directory.",
)
FROM_POLIS = typer.Option(
    None,
    "--from-polis",
    help="A Pol.is export directory (comments.csv, votes.csv, ...) "
    "to map instead of this assembly's statements.",
)
FILE_OPTION = typer.Option(
    None,
    "--file",
    help="A CSV file of statements, one per line; its header names the languages (en,fr,es).",
)


def register(app: typer.Typer) -> None:
    statements = typer.Typer(
        help="The opinion map's statements: add, list, approve or reject, send to the panel.",
        no_args_is_help=True,
    )
    app.add_typer(statements, name="statements")
    statements.command("add")(add)
    statements.command("list")(list_)
    statements.command("approve")(approve)
    statements.command("reject")(reject)
    statements.command("send")(send)
    synthesize = typer.Typer(
        help="What participants said: the opinion map (Pol.is-style) and the themes.",
        no_args_is_help=True,
    )
    app.add_typer(synthesize, name="synthesize")
    synthesize.command("opinions")(opinions_command)
    synthesize.command("themes")(themes_command)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(1)


def _translations(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        lang, sep, text = pair.partition("=")
        if not sep or not lang.strip():
            raise _fail(f"--translation {pair!r}: write it as LANG=TEXT (fr=Les bus...).")
        out[lang.strip()] = text
    return out


def _from_file(path: Path) -> list[dict[str, str]]:
    """A CSV file whose header names languages (en,fr,es), one statement per line."""
    if not path.is_file():
        raise _fail(f"{path}: no such file.")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    found = []
    for line, row in enumerate(rows, start=2):
        texts = {k.strip(): v for k, v in row.items() if k and (v or "").strip()}
        try:
            found.append(records.check_texts(texts))
        except StatementProblem as problem:
            raise _fail(f"{path}, line {line}: {problem}") from None
    return found


def add(
    text: str = typer.Argument(None, help="The statement, one short sentence."),
    language: str = typer.Option("en", "--language", "-l", help="The language of TEXT."),
    translation: list[str] = TRANSLATION,
    file: Path = FILE_OPTION,
    dry_run: bool = DRY_RUN,
) -> None:
    """Add the organisers' statements (approved as written); send them with `send`."""
    if file is not None:
        items = _from_file(file)
    elif text:
        try:
            items = [records.check_texts({language: text, **_translations(translation)})]
        except StatementProblem as problem:
            raise _fail(str(problem)) from None
    else:
        raise _fail("Give TEXT, or --file FILE.")

    async def work(sessions):
        async with sessions() as session:
            ids = [await records.add(session, texts) for texts in items]
            await (session.rollback() if dry_run else session.commit())
            return ids

    ids = asyncio.run(with_database(Settings(), work))
    table = Table("id", "texts")
    for sid, texts in zip(ids, items, strict=True):
        table.add_row(
            "-" if dry_run else str(sid), "\n".join(f"{k}: {v}" for k, v in texts.items())
        )
    console.print(table)
    console.print(
        "[yellow]Dry run: nothing stored.[/]"
        if dry_run
        else f"{len(ids)} statement(s) added. Send them with `concorder statements send`."
    )


def list_(
    status: str = typer.Option(
        None, "--status", help=f"Only {PROPOSED}, {APPROVED} or {REJECTED} statements."
    ),
) -> None:
    """Every statement: its texts, who wrote it, whether sent, and its answers so far."""

    async def work(sessions):
        async with sessions() as session:
            return await records.listing(session, status)

    rows = asyncio.run(with_database(Settings(), work))
    if not rows:
        console.print("No statements yet: `concorder statements add TEXT`.")
        return
    table = Table("id", "status", "by", "sent", "agree", "disagree", "pass", "texts")
    for r in rows:
        table.add_row(
            str(r.id),
            r.status,
            "participant" if r.proposed else "organisers",
            "yes" if r.sent else "no",
            str(r.agree),
            str(r.disagree),
            str(r.passed),
            "\n".join(f"{k}: {v}" for k, v in r.texts.items()),
        )
    console.print(table)


def _decide(statement_id: int, approve: bool, translation: list[str] | None, dry_run: bool):
    texts = _translations(translation)

    async def work(sessions):
        async with sessions() as session:
            done = await records.decide(session, statement_id, approve=approve, texts=texts)
            status = done.status
            await (session.rollback() if dry_run else session.commit())
            return status

    try:
        status = asyncio.run(with_database(Settings(), work))
    except StatementProblem as problem:
        raise _fail(str(problem)) from None
    console.print(f"Statement {statement_id}: {status}.")
    if dry_run:
        console.print("[yellow]Dry run: nothing changed.[/]")


def approve(
    statement_id: int = typer.Argument(..., metavar="ID"),
    translation: list[str] = TRANSLATION,
    dry_run: bool = DRY_RUN,
) -> None:
    """Approve a participant's statement (with translations, if given)."""
    _decide(statement_id, True, translation, dry_run)


def reject(statement_id: int = typer.Argument(..., metavar="ID"), dry_run: bool = DRY_RUN):
    """Reject a participant's statement: nobody is asked it."""
    _decide(statement_id, False, None, dry_run)


def send(dry_run: bool = DRY_RUN) -> None:
    """Send the approved statements not sent yet to the confirmed panel."""
    settings = Settings()
    try:
        sent = asyncio.run(with_relay(settings, lambda relay: records.send(relay, dry_run=dry_run)))
    except StatementProblem as problem:
        raise _fail(str(problem)) from None
    if sent.open_prompts:
        err.print(
            f"[yellow]{sent.open_prompts} prompt(s) are open at the tables: their members' "
            "replies go to their table until the prompt closes.[/]"
        )
    if dry_run:
        console.print(f"Would send {sent.statements} statement(s) to {sent.people} people.")
        console.print("[yellow]Dry run: nothing changed.[/]")
        return
    console.print(
        f"Sent {sent.statements} statement(s): {sent.asked} of {sent.people} people asked now."
    )
    if sent.not_asked:
        console.print(f"Not asked (opted out, unreachable or busy): {len(sent.not_asked)}.")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"Written to {out}.")


def opinions_command(
    from_polis: Path = FROM_POLIS,
    export_polis: Path = EXPORT_POLIS,
    language: str = typer.Option("en", "--language", "-l", help="The statements' language."),
    fmt: str = FORMAT,
    chart: Path = CHART,
    max_groups: int = typer.Option(MAX_GROUPS, "--max-groups", min=2, max=9),
    out: Path = OUT,
) -> None:
    """The opinion map: groups by PCA and k-means, what sets each apart, common ground."""
    from bot.services.synthesis import conversation, opinions, polis, report

    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r}: choose md, json or csv.")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise _fail(f"--chart {chart}: the chart is a .png or an .svg file.")
    if from_polis is not None:
        try:
            conv = polis.read(from_polis)
        except polis.ExportProblem as problem:
            raise _fail(str(problem)) from None
    else:

        async def work(sessions):
            async with sessions() as session:
                return await conversation.load(session, language)

        conv = asyncio.run(with_database(Settings(), work))
    with err.status(
        f"Mapping {len(conv.participants)} participants and {len(conv.statements)} statements…"
    ):
        try:
            result = opinions.build(conv, max_groups=max_groups)
        except ValueError as problem:
            raise _fail(str(problem)) from None
    _emit(report.opinions(result, fmt, conv.topic), out)
    if result.agreement_with_theirs is not None:
        err.print(
            f"Our {len(result.groups)} groups against the export's "
            f"{len(set(conv.their_groups.values()))}: adjusted Rand index "
            f"{result.agreement_with_theirs:.3f} over {result.compared} participants."
        )
    if chart is not None:
        err.print(f"Chart: {opinions_chart(result, chart, conv.topic)}")
    if export_polis is not None:
        written = polis.write(export_polis, conv, result)
        err.print(f"Pol.is export: {', '.join(str(p) for p in written)}")


def opinions_chart(result, path: Path, topic: str) -> Path:
    from bot.services.synthesis import chart

    return chart.draw(result, path, title=topic or "Opinion map")


def _labelled(path: Path) -> dict[tuple[str, str], tuple[list, list[str]]]:
    from bot.services.synthesis.themes import Text

    if not path.is_file():
        raise _fail(f"{path}: no such file.")
    out: dict[tuple[str, str], tuple[list, list[str]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"language", "topic", "text"} - set(reader.fieldnames or ())
        if missing:
            raise _fail(f"{path}, line 1: no column {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if not (row["text"] or "").strip() or not (row["topic"] or "").strip():
                raise _fail(f"{path}, line {line}: a row needs a text and a topic")
            texts, labels = out.setdefault((path.stem, row["language"]), ([], []))
            texts.append(Text(id=line, author=f"line {line}", text=row["text"]))
            labels.append(row["topic"])
    return out


def themes_command(
    prompt: str = typer.Option(None, "--prompt", help="Only this prompt's contributions."),
    language: str = typer.Option(None, "--language", "-l", help="Only this language."),
    labelled: Path = LABELLED,
    count: int = typer.Option(
        None, "--themes", min=2, help="A fixed number of themes (default: by silhouette)."
    ),
    fmt: str = FORMAT,
    out: Path = OUT,
) -> None:
    """The themes in what the small groups wrote, per prompt and language."""
    from bot.services.synthesis import contributions as contribution_texts
    from bot.services.synthesis import report, themes

    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r}: choose md, json or csv.")
    if labelled is not None:
        sets = _labelled(labelled)
    else:

        async def work(sessions):
            async with sessions() as session:
                return await contribution_texts.load(session, prompt=prompt, language=language)

        sets = {
            key: (texts, None)
            for key, texts in asyncio.run(with_database(Settings(), work)).items()
        }
    sets = {k: v for k, v in sets.items() if language is None or k[1] == language}
    if not sets:
        raise _fail("No contributions to read (is the prompt or the language right?).")
    found, scores = [], []
    for (name, lang), (texts, labels) in sorted(sets.items()):
        with err.status(f"{name} ({lang}): {len(texts)} texts…"):
            try:
                result = themes.find(texts, prompt=name, language=lang, themes=count)
            except ValueError as problem:
                err.print(f"[yellow]{problem}: skipped.[/]")
                continue
        found.append(result)
        scores.append(themes.agreement(result, labels) if labels else None)
    _emit(report.themes(found, scores, fmt), out)
    for result, score in zip(found, scores, strict=True):
        if score is not None:
            err.print(
                f"{result.prompt} ({result.language}): {score.themes} themes for "
                f"{score.labels} labels over {score.texts} texts: ARI {score.ari:.3f}, "
                f"NMI {score.nmi:.3f}"
            )
