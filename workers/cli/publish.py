"""`recourse publish`: a JSON Lines file of events sent to the engine's exchange."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import typer

import messages.publisher
from messages import MalformedMessage, PublishError, parse_event
from messages.ordering import TICK_KEY
from workers.operator.errors import OperatorError, UsageProblem
from workers.progress import count_lines, progress_bar, shows_progress
from workers.settings import load_settings

app = typer.Typer()


@app.command()
def publish(
    file: str = typer.Argument(..., help="JSON Lines of envelopes, one a line; - reads stdin."),
    broker_url: str | None = typer.Option(
        None, "--broker", help="amqp:// URL of RabbitMQ (default: BROKER_URL)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: sent, and the refused lines."
    ),
) -> None:
    """Publish inbound events to the refunds.events exchange, with publisher confirms.

    Each well-formed line goes as MESSAGES.md's "Transport" says: the envelope alone as the
    body, its ordering key as routing key, the connection's broker user as user_id. Tick lines
    (deadline.tick) are published like the others, but the engine only takes them from its own
    broker user, the one of BROKER_URL: sent as another user they are dead-lettered as
    unauthorized_producer. Malformed lines are refused with their line number and not sent.
    Exits 1 when any line was refused or the broker did not confirm.
    """
    settings = load_settings()
    url = broker_url or settings.broker_url
    if not url:
        raise UsageProblem(
            "BROKER_URL is not set", "publish needs RabbitMQ: set BROKER_URL or pass --broker"
        )
    engine_user = settings.engine_user if settings.broker_url else None
    # Bytes, not text: a line that is not UTF-8 is one refused line, not a crash.
    stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    total = None if file == "-" else count_lines(Path(file))
    shown = shows_progress(as_json=as_json)
    with (
        stream,
        messages.publisher.EventPublisher(url) as publisher,
        progress_bar("publishing", total, shown=shown) as advance,
    ):
        outcome = _publish_lines(
            stream, publisher, engine_user, echo_refused=not as_json, advance=advance
        )
    if as_json:
        typer.echo(json.dumps(outcome.as_json(), indent=2, sort_keys=True))
    else:
        sent, refused = outcome.sent, len(outcome.refused)
        summary = f"sent {sent} event{'' if sent == 1 else 's'} to refunds.events"
        if refused:
            summary += f"; {refused} malformed line{'' if refused == 1 else 's'} not sent"
        typer.echo(summary)
        if outcome.foreign_ticks:
            typer.echo(
                f"warning: {len(outcome.foreign_ticks)} tick lines sent as {outcome.user!r}, "
                f"not as the engine's user {engine_user!r}: the engine dead-letters them as "
                "unauthorized_producer",
                err=True,
            )
    if outcome.failure is not None:
        raise OperatorError(
            f"the broker did not take the message: {outcome.failure}",
            "check that RabbitMQ is running and that --broker or BROKER_URL point at it; the "
            "lines before it were sent, so publish the rest of the file",
        )
    if outcome.refused:
        raise typer.Exit(1)


@dataclass
class _Published:
    user: str
    sent: int = 0
    refused: list[dict[str, object]] = field(default_factory=list)
    foreign_ticks: list[int] = field(default_factory=list)
    """Line numbers of ticks sent as a user other than the engine's."""
    failure: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "refused": self.refused,
            "user": self.user,
            "ticks_not_from_engine_user": self.foreign_ticks,
            "error": self.failure,
        }


def _publish_lines(
    lines: Iterable[bytes],
    publisher: messages.publisher.EventPublisher,
    engine_user: str | None,
    *,
    echo_refused: bool,
    advance: Callable[[int], None] = lambda _done: None,
) -> _Published:
    """Send each well-formed line in order; stop at the first the broker does not confirm."""
    outcome = _Published(publisher.user)
    for number, line in enumerate(lines, start=1):
        advance(number)
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except MalformedMessage as exc:
            outcome.refused.append(
                {"line": number, "problems": [list(problem) for problem in exc.problems]}
            )
            if echo_refused:
                typer.echo(f"line {number}: {exc}", err=True)
            continue
        try:
            publisher.publish(event)
        except PublishError as exc:
            outcome.failure = (
                f"line {number} not confirmed, stopped after {outcome.sent} sent ({exc})"
            )
            break
        outcome.sent += 1
        if event.type == TICK_KEY and engine_user not in (None, outcome.user):
            outcome.foreign_ticks.append(number)
    return outcome
