"""Hourly contracts through `apply_event` on SQLite: paid invoices (CC-1, CC-12), refunds of
them (CC-2, CC-3, CC-11), disputes until the Friday after the period and within the intake
(CC-8), and escalation to support (CC-9), each judged at the event's own `occurred_at`."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import Book
from messages import parse_event
from policy import rows
from policy.apply import ApplyResult, apply_event
from policy.config import PolicySet, load_policies
from policy.errors import UnknownSubject
from policy.state import RefundRequestState, TargetState
from policy.tables import inbox, outbox, refund_requests, targets
from store.pipelining import deferred_writes

PERIOD = "2026-03-02"  # a Monday: the week ends Sunday 8 March 23:59:59 UTC
PAID = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
FRIDAY_LAST_SECOND = datetime(2026, 3, 13, 23, 59, 59, tzinfo=UTC)
SATURDAY_MIDNIGHT = datetime(2026, 3, 14, 0, 0, 0, tzinfo=UTC)
AMOUNT = 50_000
PROCESSOR_FEE = 1_480
CLIENT = "user:client"
EXPERT = "user:expert"


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine, policies: PolicySet | None = None) -> None:
        self.engine = engine
        self.policies = policies or load_policies()
        self._ids = itertools.count(1)

    def send(self, type_: str, at: datetime, **data: Any) -> ApplyResult:
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            return apply_event(conn, parse_event(body), self.policies)

    def balance(self, name: str) -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, "USD").available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(
                select(outbox.c.body).where(outbox.c.type == type_).order_by(outbox.c.seq)
            )
            return [json.loads(body) for (body,) in bodies]

    def open(self, *, kind: str = "hourly", policy: str = "cadcrowd", contract: str = "c1") -> None:
        opened = self.send(
            "contract.opened",
            PAID - timedelta(days=14),
            contract_id=contract,
            kind=kind,
            client_id="client",
            creator_id="expert",
            currency="USD",
            policy=policy,
        )
        assert opened.status == "applied"

    def pay(
        self, invoice: str = "inv1", *, at: datetime = PAID, amount: int = AMOUNT, **data: Any
    ) -> ApplyResult:
        fields: dict[str, Any] = {
            "contract_id": "c1",
            "invoice_id": invoice,
            "period_start": PERIOD,
            "payment_id": f"pay-{invoice}",
            "amount_minor": amount,
            "processor_fee_minor": PROCESSOR_FEE,
        }
        fields.update(data)
        return self.send("hourly.invoice_paid", at, **fields)

    def approve(
        self, at: datetime, amount: int = 1_000, approved_by: str = "creator", **data: Any
    ) -> ApplyResult:
        fields = {"contract_id": "c1", "target_id": "inv1", "amount_minor": amount}
        return self.send("refund.approved", at, approved_by=approved_by, **{**fields, **data})

    def dispute(self, at: datetime, dispute_id: str = "d1", target: str = "inv1") -> ApplyResult:
        return self.send(
            "dispute.opened",
            at,
            dispute_id=dispute_id,
            contract_id="c1",
            target_id=target,
            reason="hours billed that were not worked",
        )

    def request(self, at: datetime, request_id: str = "r1", **data: Any) -> ApplyResult:
        fields = {
            "request_id": request_id,
            "contract_id": "c1",
            "target_id": "inv1",
            "amount_minor": 10_000,
            "reason": "hours billed that were not worked",
        }
        return self.send("refund.requested", at, **{**fields, **data})

    def target(self, target_id: str = "inv1") -> TargetState | None:
        with self.engine.begin() as conn:
            return rows.load(conn, targets, TargetState, target_id)

    def refund_request(self, request_id: str = "r1") -> RefundRequestState:
        with self.engine.begin() as conn:
            request = rows.load(conn, refund_requests, RefundRequestState, request_id)
        assert request is not None
        return request


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


@pytest.fixture
def hourly(engine: Driver) -> Driver:
    """A `cadcrowd` hourly contract with invoice inv1 paid."""
    engine.open()
    assert engine.pay().status == "applied"
    return engine


def policy_file(tmp_path: Path, text: str) -> PolicySet:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return load_policies(path)


# CC-1 and CC-12: a paid invoice


def test_cc1_a_paid_invoice_goes_straight_to_the_experts_balance(hourly: Driver) -> None:
    """CC-1: no escrow; CC-12: `cadcrowd` charges no fee, the processor fee is the platform's."""
    assert hourly.balance(EXPERT) == AMOUNT
    assert hourly.balance(CLIENT) == 0
    assert hourly.balance("platform:fees") == 0
    assert hourly.balance("escrow:inv1") == 0
    # The platform bears the processor's fee: its account paid it out.
    assert hourly.balance("platform:processor_fees") == -PROCESSOR_FEE
    invoice = hourly.target()
    assert invoice is not None
    assert (invoice.kind, invoice.status, invoice.paid_at) == ("invoice", "paid", PAID)
    assert invoice.period_start is not None
    assert invoice.period_start.isoformat() == PERIOD


def test_cc1_cc12_an_invoice_under_spectrum_rates_pays_the_expert_less_the_creator_fee(
    engine: Driver,
) -> None:
    """CC-1: less the creator fee, the client fee to the platform (CC-12: the preset's rates)."""
    engine.open(policy="spectrum")
    assert engine.pay().status == "applied"
    assert engine.balance(EXPERT) == 46_000
    assert engine.balance("platform:fees") == 2_000 + 4_000


def test_cc12_a_policy_file_sets_cadcrowd_fees(sqlite_engine: Engine, tmp_path: Path) -> None:
    """CC-12: the seed names no rates, a policy file may set them."""
    policies = policy_file(
        tmp_path, "[cadcrowd.fees]\nclient_fee_bps = 500\ncreator_fee_bps = 1000\n"
    )
    engine = Driver(sqlite_engine, policies)
    engine.open()
    engine.pay()
    assert engine.balance(EXPERT) == 45_000
    assert engine.balance("platform:fees") == 2_500 + 5_000


def test_cc1_an_invoice_on_a_fixed_contract_is_invalid_state(engine: Driver) -> None:
    engine.open(kind="fixed")
    result = engine.pay()
    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.balance(EXPERT) == 0
    (notice,) = engine.notifications("event.rejected")
    assert notice["data"]["event_type"] == "hourly.invoice_paid"
    assert notice["data"]["subject_id"] == "inv1"
    assert engine.target() is None


def test_cc1_an_invoice_of_an_unknown_contract_writes_nothing(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.pay()
    with engine.engine.begin() as conn:
        assert conn.execute(select(inbox.c.event_id)).all() == []


def test_cc1_a_redelivered_invoice_is_paid_once(engine: Driver) -> None:
    engine.open()
    body = {
        "event_id": "evt-invoice",
        "type": "hourly.invoice_paid",
        "occurred_at": PAID.isoformat(),
        "schema_version": 1,
        "data": {
            "contract_id": "c1",
            "invoice_id": "inv1",
            "period_start": PERIOD,
            "payment_id": "pay-inv1",
            "amount_minor": AMOUNT,
            "processor_fee_minor": PROCESSOR_FEE,
        },
    }
    statuses = []
    for _ in range(2):
        with engine.engine.begin() as conn, deferred_writes(conn):
            statuses.append(apply_event(conn, parse_event(body), engine.policies).status)
    assert statuses == ["applied", "duplicate"]
    assert engine.balance(EXPERT) == AMOUNT


def test_cc1_the_same_invoice_under_a_second_event_id_is_refused(hourly: Driver) -> None:
    result = hourly.pay()
    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert hourly.balance(EXPERT) == AMOUNT


def test_cc1_a_dispute_decision_refunds_an_invoice_from_the_experts_balance(
    hourly: Driver,
) -> None:
    """CC-1: `partial_refund` and `full_refund` take the money back from the expert."""
    assert hourly.dispute(PAID + timedelta(days=1)).status == "applied"
    resolved = hourly.send(
        "dispute.resolved",
        PAID + timedelta(days=2),
        dispute_id="d1",
        contract_id="c1",
        outcome="partial_refund",
        refund_amount_minor=20_000,
    )
    assert resolved.status == "applied"
    assert hourly.balance(CLIENT) == 20_000
    assert hourly.balance(EXPERT) == 30_000
    assert hourly.dispute(PAID + timedelta(days=3), dispute_id="d2").status == "applied"
    hourly.send(
        "dispute.resolved",
        PAID + timedelta(days=4),
        dispute_id="d2",
        contract_id="c1",
        outcome="full_refund",
    )
    assert hourly.balance(CLIENT) == AMOUNT
    assert hourly.balance(EXPERT) == 0


def test_cc1_release_to_creator_on_an_invoice_moves_nothing(hourly: Driver) -> None:
    """CC-1: the money is already the expert's."""
    hourly.dispute(PAID + timedelta(days=1))
    result = hourly.send(
        "dispute.resolved",
        PAID + timedelta(days=2),
        dispute_id="d1",
        contract_id="c1",
        outcome="release_to_creator",
    )
    assert result.status == "applied"
    assert (hourly.balance(EXPERT), hourly.balance(CLIENT)) == (AMOUNT, 0)
    (notice,) = hourly.notifications("dispute.resolved")
    assert (notice["data"]["refund_minor"], notice["data"]["released_minor"]) == (0, 0)


# CC-2, CC-3 and CC-11: refunds of an invoice


def test_cc2_a_refund_request_goes_to_the_expert_who_approves_it(hourly: Driver) -> None:
    assert hourly.request(PAID + timedelta(days=1)).status == "applied"
    (asked,) = hourly.notifications("refund.requested")
    assert asked["recipients"] == [EXPERT]
    approved = hourly.approve(PAID + timedelta(days=2), amount=8_000, request_id="r1")
    assert approved.status == "applied"
    assert hourly.balance(CLIENT) == 8_000
    assert hourly.balance(EXPERT) == AMOUNT - 8_000
    assert hourly.refund_request().status == "completed"


@pytest.mark.parametrize(
    ("after_payment", "approved_by", "outcome"),
    [
        (timedelta(days=180), "creator", "applied"),
        (timedelta(days=180, microseconds=1), "creator", "needs_support"),
        (timedelta(days=181), "creator", "needs_support"),
        (timedelta(days=181), "support", "applied"),
        (timedelta(days=365), "support", "applied"),
        (timedelta(days=365), "creator", "needs_support"),
        (timedelta(days=365, microseconds=1), "support", "window_expired"),
        (timedelta(days=366), "support", "window_expired"),
        (timedelta(days=366), "creator", "window_expired"),
    ],
)
def test_cc3_approving_an_invoice_refund_on_day_180_181_365_366(
    hourly: Driver, after_payment: timedelta, approved_by: str, outcome: str
) -> None:
    """CC-3: the expert within 180 days of the payment, support until day 365, then no one."""
    result = hourly.approve(PAID + after_payment, approved_by=approved_by)
    assert (result.reason or result.status) == outcome
    refunded = 1_000 if outcome == "applied" else 0
    assert hourly.balance(CLIENT) == refunded
    assert hourly.balance(EXPERT) == AMOUNT - refunded
    if outcome != "applied":
        (notice,) = hourly.notifications("refund.rejected")
        assert notice["data"]["reason"] == outcome


def test_cc11_a_refund_of_an_invoice_not_paid_yet_waits_for_its_payment(engine: Driver) -> None:
    """CC-11: an invoice exists for the engine only once paid; a request or an approval of one
    not seen yet is an unknown subject, which the workers retry until the payment arrives (and
    dead-letter `unknown_subject` if it never does), writing nothing meanwhile."""
    engine.open()
    with pytest.raises(UnknownSubject):
        engine.request(PAID)
    with pytest.raises(UnknownSubject):
        engine.approve(PAID)
    assert engine.notifications("refund.rejected") == []
    assert engine.balance(CLIENT) == 0


def test_cc11_once_the_invoice_is_paid_the_expert_can_refund_it(engine: Driver) -> None:
    """CC-11: the same approval succeeds after the payment."""
    engine.open()
    with pytest.raises(UnknownSubject):
        engine.approve(PAID - timedelta(hours=1))
    engine.pay()
    assert engine.approve(PAID + timedelta(hours=1)).status == "applied"
    assert engine.balance(CLIENT) == 1_000


def test_cc11_an_unseen_milestone_of_a_fixed_contract_stays_an_unknown_subject(
    engine: Driver,
) -> None:
    engine.open(kind="fixed")
    with pytest.raises(UnknownSubject):
        engine.approve(PAID, target_id="m-not-funded-yet")


# CC-8: disputes of an invoice


def test_cc8_a_dispute_at_friday_23_59_59_after_the_period_is_taken(hourly: Driver) -> None:
    """CC-8: the last second of the Friday after the billing week (and its fraction)."""
    assert hourly.dispute(FRIDAY_LAST_SECOND).status == "applied"
    assert hourly.dispute(FRIDAY_LAST_SECOND, dispute_id="d1b", target="inv1").reason == (
        "invalid_state"  # one open dispute per invoice
    )
    hourly.pay("inv2")
    fraction = FRIDAY_LAST_SECOND + timedelta(microseconds=999_999)
    assert hourly.dispute(fraction, dispute_id="d2", target="inv2").status == "applied"
    (opened, _) = hourly.notifications("dispute.opened")
    assert set(opened["recipients"]) == {CLIENT, EXPERT, "dispute_team"}


def test_cc8_a_dispute_at_saturday_00_00_00_is_window_expired(hourly: Driver) -> None:
    """CC-8: one instant after the deadline is too late."""
    result = hourly.dispute(SATURDAY_MIDNIGHT)
    assert (result.status, result.reason) == ("rejected", "window_expired")
    (notice,) = hourly.notifications("dispute.rejected")
    assert notice["data"]["reason"] == "window_expired"
    assert notice["recipients"] == [CLIENT]


def test_cc8_the_dispute_team_takes_invoices_paid_within_the_past_30_days(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """CC-8 intake: with the Friday deadline extended past it, the 30 days still bind."""
    policies = policy_file(tmp_path, "[cadcrowd.windows]\nhourly_dispute_days_after_period = 90\n")
    engine = Driver(sqlite_engine, policies)
    engine.open()
    engine.pay("inv1")
    engine.pay("inv2")
    last = PAID + timedelta(days=30)
    assert engine.dispute(last, dispute_id="d1", target="inv1").status == "applied"
    late = engine.dispute(last + timedelta(seconds=1), dispute_id="d2", target="inv2")
    assert (late.status, late.reason) == ("rejected", "window_expired")


def test_cc8_a_late_published_dispute_is_judged_by_when_it_happened(hourly: Driver) -> None:
    """Rules are judged at `occurred_at`: a dispute made Friday evening and delivered after
    the weekend, after ticks and other events of later times, is still in time."""
    hourly.send("deadline.tick", SATURDAY_MIDNIGHT + timedelta(days=2))
    hourly.pay("inv2", at=SATURDAY_MIDNIGHT + timedelta(days=2), period_start="2026-03-09")
    assert hourly.dispute(FRIDAY_LAST_SECOND - timedelta(hours=2)).status == "applied"


# CC-9: escalating a declined refund


def declined_request(hourly: Driver) -> None:
    assert hourly.request(PAID + timedelta(days=1)).status == "applied"
    declined = hourly.send(
        "refund.declined",
        PAID + timedelta(days=2),
        request_id="r1",
        contract_id="c1",
        declined_by="creator",
    )
    assert declined.status == "applied"


def test_cc9_a_declined_refund_escalated_by_friday_goes_to_support_who_approves_it(
    hourly: Driver,
) -> None:
    """CC-9: escalated within the CC-8 deadline, support is told and may approve."""
    declined_request(hourly)
    result = hourly.send("refund.escalated", FRIDAY_LAST_SECOND, request_id="r1", contract_id="c1")
    assert result.status == "applied"
    assert hourly.refund_request().status == "escalated"
    (notice,) = hourly.notifications("refund.escalated")
    assert set(notice["recipients"]) == {"support", CLIENT, EXPERT}
    assert notice["data"] == {"request_id": "r1", "contract_id": "c1"}
    approved = hourly.approve(
        FRIDAY_LAST_SECOND + timedelta(days=1),
        amount=10_000,
        approved_by="support",
        request_id="r1",
    )
    assert approved.status == "applied"
    assert hourly.balance(CLIENT) == 10_000
    assert hourly.refund_request().status == "completed"


def test_cc9_an_escalation_at_saturday_midnight_is_window_expired(hourly: Driver) -> None:
    """CC-9: the same deadline as CC-8: Saturday 00:00:00 is too late."""
    declined_request(hourly)
    result = hourly.send("refund.escalated", SATURDAY_MIDNIGHT, request_id="r1", contract_id="c1")
    assert (result.status, result.reason) == ("rejected", "window_expired")
    (notice,) = hourly.notifications("refund.rejected")
    assert notice["recipients"] == [CLIENT]
    assert notice["data"]["request_id"] == "r1"
    assert hourly.refund_request().status == "declined"


def test_cc9_a_request_not_declined_cannot_be_escalated(hourly: Driver) -> None:
    hourly.request(PAID + timedelta(days=1))
    result = hourly.send(
        "refund.escalated", PAID + timedelta(days=2), request_id="r1", contract_id="c1"
    )
    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert hourly.refund_request().status == "pending"


def test_cc9_a_refund_on_a_fixed_contract_is_not_escalated(engine: Driver) -> None:
    """CC-9 is for hourly contracts; a fixed contract's declined refund stays declined."""
    engine.open(kind="fixed")
    engine.send(
        "milestone.funded",
        PAID,
        contract_id="c1",
        milestone_id="m1",
        payment_id="pay-m1",
        amount_minor=AMOUNT,
        processor_fee_minor=0,
    )
    engine.request(PAID + timedelta(days=1), target_id="m1")
    engine.send(
        "refund.declined",
        PAID + timedelta(days=2),
        request_id="r1",
        contract_id="c1",
        declined_by="creator",
    )
    result = engine.send(
        "refund.escalated", PAID + timedelta(days=3), request_id="r1", contract_id="c1"
    )
    assert (result.status, result.reason) == ("rejected", "invalid_state")


def test_cc9_an_unknown_request_is_an_unknown_subject(hourly: Driver) -> None:
    with pytest.raises(UnknownSubject):
        hourly.send("refund.escalated", PAID, request_id="r-never", contract_id="c1")


def test_cc9_a_late_published_escalation_is_judged_by_when_it_happened(hourly: Driver) -> None:
    """An escalation made on Friday and delivered on Monday is in time."""
    declined_request(hourly)
    hourly.send("deadline.tick", SATURDAY_MIDNIGHT + timedelta(days=2))
    result = hourly.send(
        "refund.escalated",
        FRIDAY_LAST_SECOND - timedelta(hours=3),
        request_id="r1",
        contract_id="c1",
    )
    assert result.status == "applied"
