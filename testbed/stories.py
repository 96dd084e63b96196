"""A deterministic generator of causally valid stories for the fault-injection runs.

A *story* is the life of one client and one creator: the contracts between them (fixed or
hourly, under either preset, some with a jurisdiction), and what they do beside contracts
(add-ons, points, withdrawals). Every event of a story comes after the events it depends on
(a contract opened before it is funded, a milestone funded before it is released, a request
before its approval, a dispute before its decision...), with strictly increasing
`occurred_at`. Stories share no subject and no user, so the events of different stories
commute: any interleaving of whole stories books what the stories book one after another.

Time is cut into *phases* by `deadline.tick` events. A phase holds every story event with
`occurred_at` up to its tick; the tick comes after all of them. The causal order of the whole
load is phase after phase, story after story inside a phase, then the tick: that is the order
the oracle replays, and any run that applies each story in its own order, one phase at a time,
must book the same.

Each event may name the one event before it whose subject it needs (`needs`): delivered
first, it names a subject the engine has not seen yet, which the workers retry until the
needed event lands. Those are the pairs a run may deliver out of order.

The stories are dated years ahead of the wall clock, so the schedulers' own ticks (wall-clock
time) never fire a story's deadline; only the load's ticks do, at their place in the order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from workers.tick_publisher import tick_envelope

BASE = datetime(2031, 3, 3, tzinfo=UTC)
"""A Monday, years after the wall clock of any run."""

STORY_START_DAYS = 28
"""Stories start within the first four weeks."""

DENSE_TICK_EVERY = timedelta(days=2)
DENSE_TICKS = 45
SPARSE_TICK_EVERY = timedelta(days=30)
FINAL_TICK_AFTER = timedelta(days=400)

EU = ("DE", "FR", "NL", "IE")
OTHER_JURISDICTIONS = ("US", "CA", "AU")
ISSUER_FEE_MINOR = 1500


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(event_id: str, type_: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """An inbound envelope as MESSAGES.md gives it, at schema version 1."""
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": stamp(at),
        "schema_version": 1,
        "data": data,
    }


@dataclass(frozen=True, slots=True)
class StoryEvent:
    envelope: dict[str, Any]
    needs: str | None = None
    """The event_id of the earlier event whose subject this one names, when delivering this
    one first leaves the engine waiting for that subject (UnknownSubject)."""

    @property
    def event_id(self) -> str:
        event_id: str = self.envelope["event_id"]
        return event_id

    @property
    def type(self) -> str:
        kind: str = self.envelope["type"]
        return kind

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.envelope["occurred_at"])

    def line(self) -> str:
        return json.dumps(self.envelope, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Story:
    story_id: str
    events: tuple[StoryEvent, ...]
    contracts: int


@dataclass(frozen=True, slots=True)
class Phase:
    """The story events up to `tick`, per story in story order, then the tick."""

    tick: StoryEvent
    slices: tuple[tuple[StoryEvent, ...], ...]

    @property
    def events(self) -> int:
        return sum(len(part) for part in self.slices)


@dataclass(frozen=True, slots=True)
class Load:
    stories: tuple[Story, ...]
    ticks: tuple[StoryEvent, ...]
    seed: int

    @property
    def contracts(self) -> int:
        return sum(story.contracts for story in self.stories)

    @property
    def story_events(self) -> int:
        return sum(len(story.events) for story in self.stories)

    @property
    def events(self) -> int:
        """Every event of the load, ticks included."""
        return self.story_events + len(self.ticks)

    def phases(self) -> list[Phase]:
        cursors = [0] * len(self.stories)
        phases = []
        for tick in self.ticks:
            slices = []
            for index, story in enumerate(self.stories):
                start = end = cursors[index]
                while end < len(story.events) and story.events[end].occurred_at <= tick.occurred_at:
                    end += 1
                if end > start:
                    slices.append(story.events[start:end])
                cursors[index] = end
            phases.append(Phase(tick, tuple(slices)))
        left = [
            story.story_id
            for story, cursor in zip(self.stories, cursors, strict=True)
            if cursor < len(story.events)
        ]
        if left:
            raise ValueError(f"stories with events after the last tick: {left[:5]}")
        return phases

    def causal_events(self) -> Iterator[StoryEvent]:
        for phase in self.phases():
            for part in phase.slices:
                yield from part
            yield phase.tick

    def causal_lines(self) -> list[str]:
        """The load as JSON Lines in its causal order: what the oracle replays."""
        return [event.line() for event in self.causal_events()]


@dataclass
class _Draft:
    at: datetime
    type: str
    data: dict[str, Any]
    key: str
    needs: str | None


@dataclass
class StoryBuilder:
    """Collects a story's events at explicit times; `build` orders them and names them."""

    story_id: str
    rng: random.Random
    drafts: list[_Draft] = field(default_factory=list)
    contracts: int = 0
    _serial: int = 0

    @property
    def client(self) -> str:
        return f"{self.story_id}-client"

    @property
    def creator(self) -> str:
        return f"{self.story_id}-creator"

    def name(self, prefix: str) -> str:
        self._serial += 1
        return f"{self.story_id}-{prefix}{self._serial}"

    def add(self, at: datetime, type_: str, data: dict[str, Any], needs: str | None = None) -> str:
        """Record an event; returns the key that a later event's `needs` may name."""
        key = f"k{len(self.drafts)}"
        self.drafts.append(_Draft(at, type_, data, key, needs))
        return key

    def build(self) -> Story:
        ordered = sorted(self.drafts, key=lambda draft: draft.at)
        ids: dict[str, str] = {}
        events = []
        last: datetime | None = None
        for number, draft in enumerate(ordered, start=1):
            at = draft.at.replace(microsecond=0)
            if last is not None and at <= last:
                # One story's events are strictly ordered in time, so their order is causal.
                at = last + timedelta(seconds=1)
            last = at
            event_id = f"{self.story_id}-e{number:03d}"
            ids[draft.key] = event_id
            needs = None
            if draft.needs is not None:
                if draft.needs not in ids:
                    raise ValueError(f"{event_id} needs an event that comes after it")
                needs = ids[draft.needs]
            events.append(StoryEvent(envelope(event_id, draft.type, at, draft.data), needs))
        return Story(self.story_id, tuple(events), self.contracts)


def processor_fee(amount_minor: int) -> int:
    return amount_minor * 29 // 1000 + 30


def milestone_amount(rng: random.Random) -> int:
    # Small ones bring SC-7 deductions and CC-6 hidden reviews; large ones real escrow.
    return rng.choice(
        (
            rng.randint(1200, 3000),
            rng.randint(5_000, 40_000),
            rng.randint(40_000, 200_000),
            rng.randint(200_000, 600_000),
        )
    )


def monday_on_or_before(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Paid:
    """A milestone, an invoice or an add-on once paid: what later events of it refer to."""

    target_id: str
    payment_id: str
    amount_minor: int
    fee_minor: int
    paid: str
    """The key of the event that paid it."""
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class Ask:
    """A refund request or a dispute: its id and the key of the event that opened it."""

    subject_id: str
    key: str


@dataclass
class Deal:
    """One contract of a story, and the events that can happen on it."""

    story: StoryBuilder
    contract_id: str
    policy: str
    opened: str
    jurisdiction: str | None

    @property
    def rng(self) -> random.Random:
        return self.story.rng

    def some_of(self, amount: int) -> int:
        """A refund amount: the whole, a part, or a small part (SC-7's threshold)."""
        rng = self.rng
        return rng.choice((amount, max(1, amount * rng.randint(10, 90) // 100), min(amount, 1500)))

    def fund(self, at: datetime) -> Paid:
        milestone_id, payment_id = self.story.name("m"), self.story.name("p")
        amount = milestone_amount(self.rng)
        fee = processor_fee(amount)
        data = {
            "contract_id": self.contract_id,
            "milestone_id": milestone_id,
            "payment_id": payment_id,
            "amount_minor": amount,
            "processor_fee_minor": fee,
        }
        key = self.story.add(at, "milestone.funded", data, needs=self.opened)
        return Paid(milestone_id, payment_id, amount, fee, key, at)

    def pay_invoice(self, period: date, at: datetime) -> Paid:
        invoice_id, payment_id = self.story.name("w"), self.story.name("p")
        amount = self.rng.randint(2_000, 90_000)
        fee = processor_fee(amount)
        data = {
            "contract_id": self.contract_id,
            "invoice_id": invoice_id,
            "period_start": period.isoformat(),
            "payment_id": payment_id,
            "amount_minor": amount,
            "processor_fee_minor": fee,
        }
        key = self.story.add(at, "hourly.invoice_paid", data, needs=self.opened)
        return Paid(invoice_id, payment_id, amount, fee, key, at)

    def start_work(self, milestone: Paid, at: datetime) -> None:
        evidence = self.rng.choice(("delivery", "upload", "kickoff_message"))
        data = {
            "contract_id": self.contract_id,
            "milestone_id": milestone.target_id,
            "evidence": evidence,
        }
        self.story.add(at, "work.started", data, needs=milestone.paid)

    def release(self, milestone: Paid, at: datetime) -> None:
        data = {
            "contract_id": self.contract_id,
            "milestone_id": milestone.target_id,
            "released_by": "client",
        }
        self.story.add(at, "milestone.released", data, needs=milestone.paid)

    def request(self, target: Paid, at: datetime, amount: int, *, awaited: bool = True) -> Ask:
        """A refund request; `awaited` when the engine waits for an unseen target (a
        milestone) rather than refusing it (an invoice, CC-11)."""
        request_id = self.story.name("r")
        reason = self.rng.choice(
            ("not what we agreed", "delivered late", "billed twice", "changed our mind")
        )
        data = {
            "request_id": request_id,
            "contract_id": self.contract_id,
            "target_id": target.target_id,
            "amount_minor": amount,
            "reason": reason,
        }
        needs = target.paid if awaited else None
        return Ask(request_id, self.story.add(at, "refund.requested", data, needs=needs))

    def approve(
        self,
        target: Paid,
        at: datetime,
        amount: int,
        *,
        by: str = "creator",
        request: Ask | None = None,
        awaited: bool = True,
    ) -> None:
        data: dict[str, Any] = {
            "contract_id": self.contract_id,
            "target_id": target.target_id,
            "amount_minor": amount,
            "approved_by": by,
        }
        needs = target.paid if awaited else None
        if request is not None:
            data["request_id"] = request.subject_id
            needs = request.key
        self.story.add(at, "refund.approved", data, needs=needs)

    def decline(self, request: Ask, at: datetime, by: str = "creator") -> None:
        data = {
            "request_id": request.subject_id,
            "contract_id": self.contract_id,
            "declined_by": by,
        }
        # Only the first decline finds the request waiting; a later one is judged by state.
        self.story.add(at, "refund.declined", data, needs=request.key if by == "creator" else None)

    def dispute(self, target: Paid, at: datetime, *, awaited: bool = True) -> Ask:
        dispute_id = self.story.name("d")
        data = {
            "dispute_id": dispute_id,
            "contract_id": self.contract_id,
            "target_id": target.target_id,
            "reason": "the work does not match the brief",
        }
        key = self.story.add(at, "dispute.opened", data, needs=target.paid if awaited else None)
        return Ask(dispute_id, key)

    def decide(self, dispute: Ask, at: datetime, amount: int) -> None:
        # The client's evidence reaches the team as the decision is made: at the same instant
        # and recorded first, so it stays inside the dispute's life; no draw of the rng, so the
        # rest of a seed's story is unchanged.
        evidence = {
            "evidence_id": f"{dispute.subject_id}-ev",
            "dispute_id": dispute.subject_id,
            "contract_id": self.contract_id,
            "party": "client",
            "text": "the delivery does not match the brief",
            "attachments": [],
        }
        self.story.add(at, "dispute.evidence_added", evidence, needs=dispute.key)
        outcome = self.rng.choice(("full_refund", "partial_refund", "release_to_creator"))
        data: dict[str, Any] = {
            "dispute_id": dispute.subject_id,
            "contract_id": self.contract_id,
            "outcome": outcome,
        }
        if outcome == "partial_refund":
            data["refund_amount_minor"] = max(1, amount * self.rng.randint(10, 80) // 100)
        self.story.add(at, "dispute.resolved", data, needs=dispute.key)

    def fee_refunded(self, paid: Paid, at: datetime) -> None:
        amount = self.rng.choice((paid.fee_minor, max(1, paid.fee_minor // 2)))
        data = {"payment_id": paid.payment_id, "amount_minor": amount}
        self.story.add(at, "processor.fee_refunded", data, needs=paid.paid)

    def charge_total(self, amount: int) -> int:
        """What the card was charged for a milestone: its amount and the client fee (4% under
        `spectrum`, none under `cadcrowd`)."""
        return amount + round(amount * 0.04) if self.policy == "spectrum" else amount


def chargeback(story: StoryBuilder, paid: Paid, at: datetime, total: int, after: timedelta) -> None:
    """SC-11: opened on a payment, resolved `after` later either way."""
    chargeback_id = story.name("cb")
    data = {
        "chargeback_id": chargeback_id,
        "payment_id": paid.payment_id,
        "amount_minor": story.rng.choice((total, max(1, total // 2))),
        "issuer_fee_minor": ISSUER_FEE_MINOR,
    }
    opened = story.add(at, "chargeback.opened", data, needs=paid.paid)
    outcome = story.rng.choice(("client_won", "client_lost"))
    story.add(
        at + after,
        "chargeback.resolved",
        {"chargeback_id": chargeback_id, "outcome": outcome},
        needs=opened,
    )


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

MilestonePath = Callable[[Deal, Paid], datetime]
"""Writes what happens to one funded milestone; returns the time of its last event."""


def spectrum_release(deal: Deal, m: Paid) -> datetime:
    """SC-1 release; sometimes a voluntary refund after it (SC-5, SC-6)."""
    if deal.rng.random() < 0.6:
        deal.start_work(m, m.paid_at + DAY)
    deal.release(m, m.paid_at + 3 * DAY)
    if deal.rng.random() < 0.3:
        deal.approve(m, m.paid_at + 20 * DAY, deal.some_of(m.amount_minor))
        return m.paid_at + 20 * DAY
    return m.paid_at + 3 * DAY


def spectrum_release_dispute(deal: Deal, m: Paid) -> datetime:
    """SC-4 dispute of released money, decided (SC-5 claw-back), maybe overdue (SC-14)."""
    deal.release(m, m.paid_at + 2 * DAY)
    dispute = deal.dispute(m, m.paid_at + 4 * DAY)
    decided = m.paid_at + (5 + deal.rng.randint(1, 9)) * DAY
    deal.decide(dispute, decided, m.amount_minor)
    return decided


def spectrum_refund(deal: Deal, m: Paid, amount: int) -> datetime:
    """SC-2 automatic refund before work; the processor may refund its fee (SC-7)."""
    deal.request(m, m.paid_at + 5 * HOUR, amount)
    if deal.rng.random() < 0.5:
        deal.fee_refunded(m, m.paid_at + 2 * DAY)
    if amount < m.amount_minor:
        deal.release(m, m.paid_at + 4 * DAY)
        return m.paid_at + 4 * DAY
    return m.paid_at + 2 * DAY


def spectrum_automatic(deal: Deal, m: Paid) -> datetime:
    return spectrum_refund(deal, m, deal.some_of(m.amount_minor))


def spectrum_small_refund(deal: Deal, m: Paid) -> datetime:
    return spectrum_refund(deal, m, min(m.amount_minor, deal.rng.randint(300, 1900)))


def spectrum_dispute(deal: Deal, m: Paid) -> datetime:
    """SC-3: a request once work started opens a dispute under the request's id."""
    deal.start_work(m, m.paid_at + DAY)
    # Within an EU cooling-off (SC-13) the request would be refunded, not disputed.
    asked = m.paid_at + (16 if deal.jurisdiction in EU else 2) * DAY
    request = deal.request(m, asked, deal.some_of(m.amount_minor))
    decided = asked + deal.rng.randint(1, 9) * DAY
    deal.decide(request, decided, m.amount_minor)
    return decided


def spectrum_dispute_direct(deal: Deal, m: Paid) -> datetime:
    deal.start_work(m, m.paid_at + DAY)
    dispute = deal.dispute(m, m.paid_at + 2 * DAY)
    decided = m.paid_at + (2 + deal.rng.randint(1, 9)) * DAY
    deal.decide(dispute, decided, m.amount_minor)
    return decided


def milestone_chargeback(deal: Deal, m: Paid) -> datetime:
    """SC-11 and SC-12: a chargeback on the milestone's payment, a release tried while the
    escrow is frozen."""
    if deal.rng.random() < 0.5:
        deal.release(m, m.paid_at + DAY)
    after = timedelta(days=deal.rng.randint(5, 40))
    chargeback(deal.story, m, m.paid_at + 3 * DAY, deal.charge_total(m.amount_minor), after)
    deal.release(m, m.paid_at + 4 * DAY)
    return m.paid_at + 3 * DAY + after


def spectrum_cooling_off(deal: Deal, m: Paid) -> datetime:
    """SC-13: after work started, refunded in an EU cooling-off, disputed elsewhere."""
    deal.start_work(m, m.paid_at + DAY)
    asked = m.paid_at + deal.rng.choice((5, 20)) * DAY
    deal.request(m, asked, deal.some_of(m.amount_minor))
    return asked


def idle(_deal: Deal, m: Paid) -> datetime:
    """Funded and left in escrow."""
    return m.paid_at + 3 * HOUR


def cadcrowd_release_refund(deal: Deal, m: Paid) -> datetime:
    """CC-10: released counts as accepted; the expert refunds unasked (CC-2)."""
    deal.release(m, m.paid_at + 2 * DAY)
    deal.approve(m, m.paid_at + 10 * DAY, deal.some_of(m.amount_minor))
    return m.paid_at + 10 * DAY


def cadcrowd_late_refund(deal: Deal, m: Paid) -> datetime:
    """CC-3: day 170 is the expert's, day 200 support's alone, day 400 nobody's."""
    deal.release(m, m.paid_at + 2 * DAY)
    at = m.paid_at + deal.rng.choice((170, 200, 400)) * DAY
    by = deal.rng.choice(("creator", "support"))
    deal.approve(m, at, deal.some_of(m.amount_minor), by=by)
    return at


def cadcrowd_request_approved(deal: Deal, m: Paid) -> datetime:
    """CC-2: the client asks, the expert approves an amount of its own choosing."""
    request = deal.request(m, m.paid_at + DAY, deal.some_of(m.amount_minor))
    deal.approve(m, m.paid_at + 2 * DAY, deal.some_of(m.amount_minor), request=request)
    return m.paid_at + 2 * DAY


def cadcrowd_request_declined(deal: Deal, m: Paid) -> datetime:
    request = deal.request(m, m.paid_at + DAY, deal.some_of(m.amount_minor))
    deal.decline(request, m.paid_at + 2 * DAY)
    deal.release(m, m.paid_at + 3 * DAY)
    return m.paid_at + 3 * DAY


def cadcrowd_dispute(deal: Deal, m: Paid) -> datetime:
    """CC-10: the dispute team takes unreleased escrow."""
    dispute = deal.dispute(m, m.paid_at + 2 * DAY)
    decided = m.paid_at + (2 + deal.rng.randint(1, 9)) * DAY
    deal.decide(dispute, decided, m.amount_minor)
    return decided


def cadcrowd_dispute_released(deal: Deal, m: Paid) -> datetime:
    """CC-10: no dispute of a released milestone (`already_released`)."""
    deal.release(m, m.paid_at + DAY)
    deal.dispute(m, m.paid_at + 2 * DAY)
    return m.paid_at + 2 * DAY


SPECTRUM_PATHS: tuple[MilestonePath, ...] = (
    spectrum_release,
    spectrum_release_dispute,
    spectrum_automatic,
    spectrum_small_refund,
    spectrum_dispute,
    spectrum_dispute_direct,
    milestone_chargeback,
    spectrum_cooling_off,
    idle,
)
CADCROWD_PATHS: tuple[MilestonePath, ...] = (
    cadcrowd_release_refund,
    cadcrowd_late_refund,
    cadcrowd_request_approved,
    cadcrowd_request_declined,
    cadcrowd_dispute,
    cadcrowd_dispute_released,
    milestone_chargeback,
    idle,
)


def open_deal(story: StoryBuilder, at: datetime, policy: str, kind: str) -> Deal:
    story.contracts += 1
    contract_id = story.name("c")
    jurisdiction = story.rng.choice((None, None, *EU, *OTHER_JURISDICTIONS))
    data: dict[str, Any] = {
        "contract_id": contract_id,
        "kind": kind,
        "client_id": story.client,
        "creator_id": story.creator,
        "currency": "USD",
        "policy": policy,
    }
    if kind == "fixed" and jurisdiction is not None:
        data["client_jurisdiction"] = jurisdiction
    else:
        jurisdiction = None
    opened = story.add(at, "contract.opened", data)
    return Deal(story, contract_id, policy, opened, jurisdiction)


def close(deal: Deal, at: datetime) -> datetime:
    deal.story.add(at, "contract.closed", {"contract_id": deal.contract_id}, needs=deal.opened)
    return at


def fixed_contract(story: StoryBuilder, start: datetime, policy: str, milestones: int) -> datetime:
    deal = open_deal(story, start, policy, "fixed")
    paths = SPECTRUM_PATHS if policy == "spectrum" else CADCROWD_PATHS
    last = start
    for number in range(milestones):
        milestone = deal.fund(start + timedelta(hours=1 + 5 * number))
        if policy == "spectrum" and story.rng.random() < 0.25:
            # SC-10: points for the milestone, clawed back if it is refunded.
            data = {
                "user_id": story.creator,
                "points": story.rng.randint(50, 900),
                "milestone_id": milestone.target_id,
            }
            story.add(milestone.paid_at + 2 * HOUR, "points.awarded", data, needs=milestone.paid)
        last = max(last, story.rng.choice(paths)(deal, milestone))
    return close(deal, last + DAY) if story.rng.random() < 0.7 else last


InvoicePath = Callable[[Deal, Paid], datetime]


def invoice_refund_declined(deal: Deal, invoice: Paid, *, escalate: bool = False) -> datetime:
    """CC-2 declined; CC-9 escalated to support, who approves or declines in turn."""
    # Not awaited: an invoice the engine has not seen is `not_paid` (CC-11), not retried.
    request = deal.request(
        invoice, invoice.paid_at + DAY, deal.some_of(invoice.amount_minor), awaited=False
    )
    deal.decline(request, invoice.paid_at + 2 * DAY)
    if not escalate:
        return invoice.paid_at + 2 * DAY
    deal.story.add(
        invoice.paid_at + 3 * DAY,
        "refund.escalated",
        {"request_id": request.subject_id, "contract_id": deal.contract_id},
    )
    decided = invoice.paid_at + 4 * DAY
    if deal.rng.random() < 0.5:
        amount = deal.some_of(invoice.amount_minor)
        deal.approve(invoice, decided, amount, by="support", request=request, awaited=False)
    else:
        deal.decline(request, decided, by="support")
    return decided


def invoice_escalated(deal: Deal, invoice: Paid) -> datetime:
    return invoice_refund_declined(deal, invoice, escalate=True)


def invoice_dispute(deal: Deal, invoice: Paid) -> datetime:
    """CC-8 within the Friday deadline, decided (CC-1)."""
    dispute = deal.dispute(invoice, invoice.paid_at + DAY, awaited=False)
    decided = invoice.paid_at + deal.rng.randint(2, 9) * DAY
    deal.decide(dispute, decided, invoice.amount_minor)
    return decided


def invoice_late_dispute(deal: Deal, invoice: Paid) -> datetime:
    """CC-8: after the Friday deadline (`window_expired`)."""
    deal.dispute(invoice, invoice.paid_at + 12 * DAY, awaited=False)
    return invoice.paid_at + 12 * DAY


def invoice_unasked(deal: Deal, invoice: Paid) -> datetime:
    at = invoice.paid_at + 5 * DAY
    deal.approve(invoice, at, deal.some_of(invoice.amount_minor), awaited=False)
    return at


def invoice_small_refund(deal: Deal, invoice: Paid) -> datetime:
    """SC-7 deduction on a small refund, passed back when the processor refunds its fee."""
    asked = min(invoice.amount_minor, deal.rng.randint(200, 1900))
    request = deal.request(invoice, invoice.paid_at + DAY, asked, awaited=False)
    amount = min(invoice.amount_minor, 1000)
    deal.approve(invoice, invoice.paid_at + 2 * DAY, amount, request=request, awaited=False)
    deal.fee_refunded(invoice, invoice.paid_at + 3 * DAY)
    return invoice.paid_at + 3 * DAY


def invoice_kept(_deal: Deal, invoice: Paid) -> datetime:
    return invoice.paid_at


INVOICE_PATHS: tuple[InvoicePath, ...] = (
    invoice_kept,
    invoice_escalated,
    invoice_refund_declined,
    invoice_dispute,
    invoice_late_dispute,
    invoice_unasked,
    invoice_small_refund,
)


def hourly_contract(story: StoryBuilder, start: datetime, policy: str, invoices: int) -> datetime:
    """Weekly invoices (CC-1), each paid the Monday after its period, and what follows."""
    deal = open_deal(story, start, policy, "hourly")
    first_period = monday_on_or_before(start.date())
    last = start
    for week in range(invoices):
        period = first_period + timedelta(weeks=week)
        period_end = datetime.combine(period + timedelta(days=7), datetime.min.time(), UTC)
        invoice = deal.pay_invoice(period, max(period_end, start) + timedelta(hours=9 + week))
        last = max(last, story.rng.choice(INVOICE_PATHS)(deal, invoice))
    return close(deal, last + DAY) if story.rng.random() < 0.6 else last


def addon(story: StoryBuilder, at: datetime) -> None:
    """SC-9: refunded within 24 hours before it runs; otherwise refused. Or charged back."""
    rng = story.rng
    addon_id, payment_id = story.name("a"), story.name("p")
    amount = rng.randint(500, 5_000)
    data = {
        "addon_id": addon_id,
        "user_id": story.client,
        "kind": rng.choice(("profile_boost", "featured_placement")),
        "payment_id": payment_id,
        "amount_minor": amount,
        "currency": "USD",
    }
    bought = story.add(at, "addon.purchased", data)
    path = rng.choice(("refund", "started", "late", "kept", "chargeback"))
    if path == "started":
        story.add(at + HOUR, "addon.started", {"addon_id": addon_id}, needs=bought)
    if path in ("refund", "started", "late"):
        later = timedelta(hours=30 if path == "late" else 2)
        story.add(at + later, "addon.refund_requested", {"addon_id": addon_id}, needs=bought)
    if path == "chargeback":
        paid = Paid(addon_id, payment_id, amount, 0, bought, at)
        chargeback(story, paid, at + 2 * DAY, amount, timedelta(days=10))


def points(story: StoryBuilder, at: datetime) -> None:
    """SC-10: an award, a cash-out (sometimes too large), sometimes a fraud reversal."""
    rng = story.rng
    award = rng.randint(500, 3_000)
    story.add(at, "points.awarded", {"user_id": story.client, "points": award})
    cashout_id = story.name("co")
    asked = rng.choice((award // 2, award, award * 3))
    data = {"cashout_id": cashout_id, "user_id": story.client, "points": asked}
    paid = story.add(at + DAY, "points.cashout_paid", data)
    if asked <= award and rng.random() < 0.5:
        # Only a cash-out that was paid can be reversed; one refused was never recorded.
        data = {"cashout_id": cashout_id, "fraud_claim_id": story.name("fraud")}
        story.add(at + 3 * DAY, "points.cashout_reversed", data, needs=paid)


def withdrawal(story: StoryBuilder, at: datetime) -> None:
    """CC-5: a withdrawal of what the creator earned, or of more than that."""
    data = {
        "withdrawal_id": story.name("wd"),
        "user_id": story.creator,
        "amount_minor": story.rng.choice((500, 5_000, 50_000, 5_000_000)),
        "currency": "USD",
    }
    story.add(at, "withdrawal.requested", data)


def story_of(number: int, rng: random.Random, targets: int, contracts: int) -> Story:
    """A story of `contracts` contracts (0: add-ons, points and withdrawals only) with about
    `targets` milestones or invoices each."""
    story = StoryBuilder(f"s{number:04d}", rng)
    offset = timedelta(
        days=rng.randrange(STORY_START_DAYS), hours=rng.randint(6, 18), minutes=rng.randrange(60)
    )
    start = BASE + offset
    for index in range(contracts):
        begin = start + 3 * index * DAY
        policy = rng.choice(("spectrum", "cadcrowd"))
        contract = hourly_contract if rng.random() < 0.3 else fixed_contract
        contract(story, begin, policy, targets)
    if contracts == 0 or rng.random() < 0.3:
        addon(story, start + 3 * HOUR)
    if contracts == 0 or rng.random() < 0.25:
        points(story, start + DAY + 5 * HOUR)
    if contracts == 0 or rng.random() < 0.3:
        withdrawal(story, start + rng.randint(4, 30) * DAY)
    return story.build()


def ticks_for(stories: list[Story]) -> list[StoryEvent]:
    last = max(event.occurred_at for story in stories for event in story.events)
    times = {BASE + DENSE_TICK_EVERY * index + timedelta(hours=22) for index in range(DENSE_TICKS)}
    at = BASE + SPARSE_TICK_EVERY
    while at <= last:
        times.add(at)
        at += SPARSE_TICK_EVERY
    times.add(last + FINAL_TICK_AFTER)
    return [StoryEvent(tick_envelope(moment)) for moment in sorted(times)]


def generate_load(events: int, contracts: int, seed: int = 8) -> Load:
    """About `events` events (ticks included) over exactly `contracts` contracts.

    A contract takes a handful of events at the least, so fewer than about eight per contract
    gives more events than asked. The same arguments give the same load, to the byte.
    """
    if contracts < 1 or events < contracts:
        raise ValueError("ask for at least one contract and at least one event per contract")
    rng = random.Random(seed)
    stories: list[Story] = []
    made_events = made_contracts = 0
    # Ticks and user-only stories take a share; the rest is spread over the contracts.
    while made_contracts < contracts:
        left = contracts - made_contracts
        per_contract = max(2.0, (events * 0.92 - made_events) / left)
        # A contract is its opening, a close, and ~3.6 events per milestone or invoice.
        targets = max(1, min(8, round((per_contract - 2) / 3.6 + rng.uniform(-0.5, 0.5))))
        count = min(left, rng.choice((1, 1, 1, 2)))
        story = story_of(len(stories), rng, targets, count)
        stories.append(story)
        made_events += len(story.events)
        made_contracts += count
    while made_events + len(ticks_for(stories)) < events:
        story = story_of(len(stories), rng, 0, 0)
        stories.append(story)
        made_events += len(story.events)
    return Load(tuple(stories), tuple(ticks_for(stories)), seed)
