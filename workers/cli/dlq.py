"""`recourse dlq list|show|retry|purge`: the dead letters."""

from __future__ import annotations

import json

import typer

from workers.database import make_engine
from workers.dlq import REASONS, chosen_ids, get_letter, list_letters, printable, purge, retry
from workers.intake.producers import load_producers
from workers.intake.service import Intake
from workers.operator.database import describe, reading
from workers.operator.errors import NotFound, UsageProblem
from workers.settings import load_settings

app = typer.Typer()
dlq_app = typer.Typer(
    name="dlq",
    help="The dead letters: messages the intake refused and events the engine gave up on.",
    no_args_is_help=True,
)
app.add_typer(dlq_app)

DB_OPTION_HELP = "Database URL (default: DATABASE_URL)."
REASON_HELP = (
    "malformed, misrouted, unauthorized_producer, idempotency_conflict, unknown_subject or "
    "handler_error."
)


def _dlq_reason(reason: str | None) -> str | None:

    if reason is not None and reason not in REASONS:
        raise UsageProblem(f"no dead-letter reason {reason!r}", f"use one of: {REASON_HELP}")
    return reason


def _dlq_choice(
    command: str, ids: list[int] | None, reason: str | None, every: bool
) -> tuple[list[int], str | None, bool]:
    """Exactly one way of naming letters: ids, --reason or --all."""
    given = sum((bool(ids), reason is not None, every))
    if given != 1:
        raise UsageProblem(
            "name the dead letters one way",
            f"give their ids, or --reason REASON, or --all (`recourse dlq {command} --help`)",
        )
    return list(ids or []), _dlq_reason(reason), every


def _print_json(value: object) -> None:

    typer.echo(json.dumps(value, indent=2, sort_keys=True))


@dlq_app.command("list")
def dlq_list(
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Only this reason: {REASON_HELP}"
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="Letters per page."),
    before: int | None = typer.Option(
        None, "--before", help="Start below this dead letter id (the next page)."
    ),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List dead letters, newest first, with their reason and first problem."""
    with reading(database_url or load_settings().database_url) as conn:
        page = list_letters(conn, reason=_dlq_reason(reason), limit=limit, before=before)
    if as_json:
        _print_json(page.as_json())
        return
    for letter in page.letters:
        problem = f"{letter.problems[0][0]}: {letter.problems[0][1]}" if letter.problems else "-"
        fields = (
            str(letter.dead_letter_id),
            letter.dead_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            letter.reason,
            letter.event_type or "-",
            letter.event_id or "-",
            problem,
        )
        typer.echo("  ".join(printable(field) for field in fields))
    shown = len(page.letters)
    summary = f"{shown} of {page.total} dead letter{'' if page.total == 1 else 's'}"
    if page.next_before is not None:
        summary += f"; older ones: recourse dlq list --before {page.next_before}"
    typer.echo(summary)


@dlq_app.command("show")
def dlq_show(
    dead_letter_id: int = typer.Argument(..., help="The dead letter's id (see `dlq list`)."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, body included."),
) -> None:
    """Print one dead letter: its reason, its problems, where it came from and its body.

    The body is printed as stored, with every character a terminal could take for a control
    escaped (\\x1b, \\u202e...); `--json` gives it as a JSON string.
    """
    url = database_url or load_settings().database_url
    with reading(url) as conn:
        letter = get_letter(conn, dead_letter_id)
    if letter is None:
        raise NotFound(
            "dead letter", str(dead_letter_id), describe(url), "see `recourse dlq list` for ids"
        )
    if as_json:
        _print_json(letter.as_json(with_body=True))
        return
    if letter.body_intact:
        body_note = f"{letter.body_bytes} bytes"
    else:
        body_note = (
            f"{letter.body_bytes} bytes received; stored cut at 256 KiB or with undecodable "
            "bytes replaced (\\ufffd)"
        )
    rows = [
        ("dead letter", str(letter.dead_letter_id)),
        ("reason", letter.reason),
        *[("problem", f"{field}: {problem}") for field, problem in letter.problems],
        ("event", f"{letter.event_type or '-'} {letter.event_id or '-'}"),
        ("routing key", letter.routing_key or "-"),
        ("producer", letter.producer or "-"),
        ("log seq", "-" if letter.log_seq is None else str(letter.log_seq)),
        ("received at", letter.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("dead at", letter.dead_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("body", body_note),
    ]
    for name, value in rows:
        typer.echo(f"{name + ':':<13}{printable(value)}")
    typer.echo(printable(letter.body, keep_newlines=True))


@dlq_app.command("retry")
def dlq_retry(
    *,
    dead_letter_ids: list[int] = typer.Argument(None, help="Letters to retry, by id."),
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Every letter of: {REASON_HELP}"
    ),
    every: bool = typer.Option(False, "--all", help="Every dead letter."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Submit dead letters to the intake again, oldest first, then delete them.

    The intake judges each body again, as from the broker user that first sent it; what it
    refuses again comes back as a new dead letter. A retried event goes to the end of its
    key's order: it is applied after every event of its key already received. A running
    worker picks it up within SWEEP_SECONDS. Exits 1 when a letter was not retried.
    """
    ids, wanted_reason, every = _dlq_choice("retry", dead_letter_ids, reason, every)
    settings = load_settings()
    url = database_url or settings.database_url
    with reading(url) as conn:
        chosen = ids or chosen_ids(conn, reason=wanted_reason, every=every)

    engine = make_engine(url)
    try:
        intake = Intake(
            engine,
            load_producers(settings.producers_file, settings.engine_user),
            # No worker of this process: the workers' sweepers find the new entries.
            nudge=lambda _partitions: None,
        )
        outcomes = retry(engine, intake, chosen)
    finally:
        engine.dispose()
    retried = sum(outcome.retried for outcome in outcomes)
    kept = len(outcomes) - retried
    if as_json:
        _print_json(
            {
                "retried": retried,
                "kept": kept,
                "letters": [outcome.as_json() for outcome in outcomes],
            }
        )
    else:
        for outcome in outcomes:
            verb = "retried" if outcome.retried else "kept"
            typer.echo(f"{verb} {outcome.dead_letter_id}: {outcome.detail}")
        typer.echo(f"{retried} retried, {kept} kept")
    if kept:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    *,
    dead_letter_ids: list[int] = typer.Argument(None, help="Letters to delete, by id."),
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Every letter of: {REASON_HELP}"
    ),
    every: bool = typer.Option(False, "--all", help="Every dead letter."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: the letters are deleted for good."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Delete dead letters for good. Exits 1 when a letter named by id does not exist."""
    ids, wanted_reason, every = _dlq_choice("purge", dead_letter_ids, reason, every)
    if not yes:
        raise UsageProblem(
            "purge deletes dead letters for good", "pass --yes to confirm, or see `dlq list`"
        )
    url = database_url or load_settings().database_url
    with reading(url) as conn:
        found = chosen_ids(conn, ids=ids, reason=wanted_reason, every=every)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            purged = purge(conn, found)
    finally:
        engine.dispose()
    missing = sorted(set(ids) - set(found))
    if as_json:
        _print_json({"purged": purged, "missing": missing})
    else:
        typer.echo(f"{purged} dead letter{'' if purged == 1 else 's'} purged")
        for dead_letter_id in missing:
            typer.echo(f"no dead letter {dead_letter_id}", err=True)
    if missing:
        raise typer.Exit(1)
