"""Fixed contracts through the engine (`apply_event` on SQLite, a few on PostgreSQL): funding,
release, automatic refunds, disputes and their decisions, approvals and declines, deadlines.

Amounts are minor units; a $500.00 milestone under `spectrum` carries a $20.00 client fee and
a $40.00 creator fee. `platform:fees` and escrow balances are credits less debits.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import Book, TransferCode, audit
from messages import parse_event
from policy import rows
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.errors import UnknownSubject
from policy.state import DisputeState, RefundRequestState, TargetState
from policy.tables import disputes, inbox, outbox, refund_requests, targets
from store.pipelining import deferred_writes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads what they did."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)

    def send(self, type_: str, at: datetime, *, event_id: str = "", **data: Any) -> ApplyResult:
        body = {
            "event_id": event_id or f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            return apply_event(conn, parse_event(body), self.policies)

    def tick(self, at: datetime) -> ApplyResult:
        return self.send("deadline.tick", at)

    def open(
        self, policy: str = "spectrum", contract_id: str = "c1", jurisdiction: str | None = None
    ) -> None:
        extra = {"client_jurisdiction": jurisdiction} if jurisdiction else {}
        result = self.send(
            "contract.opened",
            T0,
            contract_id=contract_id,
            kind="fixed",
            client_id="ana",
            creator_id="ben",
            currency="USD",
            policy=policy,
            **extra,
        )
        assert result.status == "applied"

    def fund(
        self,
        milestone_id: str = "m1",
        amount: int = 50000,
        *,
        at: datetime = T0 + HOUR,
        contract_id: str = "c1",
        processor_fee: int = 0,
    ) -> None:
        result = self.send(
            "milestone.funded",
            at,
            contract_id=contract_id,
            milestone_id=milestone_id,
            payment_id=f"pay-{milestone_id}",
            amount_minor=amount,
            processor_fee_minor=processor_fee,
        )
        assert result.status == "applied"

    def request(
        self, request_id: str, amount: int, at: datetime, target_id: str = "m1"
    ) -> ApplyResult:
        return self.send(
            "refund.requested",
            at,
            request_id=request_id,
            contract_id="c1",
            target_id=target_id,
            amount_minor=amount,
            reason="not what we agreed",
        )

    def release(self, at: datetime, milestone_id: str = "m1") -> ApplyResult:
        return self.send(
            "milestone.released",
            at,
            contract_id="c1",
            milestone_id=milestone_id,
            released_by="client",
        )

    def start_work(self, at: datetime, milestone_id: str = "m1") -> ApplyResult:
        return self.send(
            "work.started", at, contract_id="c1", milestone_id=milestone_id, evidence="upload"
        )

    def resolve(
        self, dispute_id: str, outcome: str, at: datetime, refund_amount_minor: int | None = None
    ) -> ApplyResult:
        amount: dict[str, Any] = {}
        if refund_amount_minor is not None:
            amount["refund_amount_minor"] = refund_amount_minor
        return self.send(
            "dispute.resolved",
            at,
            dispute_id=dispute_id,
            contract_id="c1",
            outcome=outcome,
            **amount,
        )

    def balance(self, name: str) -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, "USD").available_minor

    def balances(self, *names: str) -> dict[str, int]:
        return {name: self.balance(name) for name in names}

    def notifications(self, type_: str | None = None) -> list[dict[str, Any]]:
        query = select(outbox.c.body).order_by(outbox.c.seq)
        if type_ is not None:
            query = query.where(outbox.c.type == type_)
        with self.engine.begin() as conn:
            bodies: list[str] = list(conn.scalars(query))
        return [json.loads(body) for body in bodies]

    def types(self) -> list[str]:
        return [item["type"] for item in self.notifications()]

    def target(self, target_id: str = "m1") -> TargetState:
        with self.engine.begin() as conn:
            target = rows.load(conn, targets, TargetState, target_id)
        assert target is not None
        return target

    def refund_request(self, request_id: str) -> RefundRequestState:
        with self.engine.begin() as conn:
            request = rows.load(conn, refund_requests, RefundRequestState, request_id)
        assert request is not None
        return request

    def dispute(self, dispute_id: str) -> DisputeState:
        with self.engine.begin() as conn:
            dispute = rows.load(conn, disputes, DisputeState, dispute_id)
        assert dispute is not None
        return dispute

    def audit_ok(self) -> bool:
        with self.engine.begin() as conn:
            report = audit(conn)
        assert report.ok, report.problems
        return report.ok


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


PARTIES = ("user:ana", "user:ben", "escrow:m1", "platform:fees")


# spectrum: funding, release, automatic refunds ---------------------------------------------


def test_sc1_funded_money_sits_in_escrow_until_the_client_releases_it(engine: Driver) -> None:
    """SC-1: funding fills escrow and fees; release pays the creator less the creator fee."""
    engine.open()
    engine.fund(processor_fee=1538)
    assert engine.balances(*PARTIES) == {
        "user:ana": 0,
        "user:ben": 0,
        "escrow:m1": 50000,
        "platform:fees": 2000,
    }
    assert engine.release(T0 + 2 * DAY).status == "applied"
    assert engine.balances(*PARTIES) == {
        "user:ana": 0,
        "user:ben": 46000,
        "escrow:m1": 0,
        "platform:fees": 6000,
    }
    assert engine.target().status == "released"
    assert engine.audit_ok()


def test_sc1_second_release_is_rejected_with_event_rejected(engine: Driver) -> None:
    engine.open()
    engine.fund()
    engine.release(T0 + DAY)
    second = engine.release(T0 + 2 * DAY)
    assert (second.status, second.reason) == ("rejected", "invalid_state")
    (notice,) = engine.notifications("event.rejected")
    assert notice["recipients"] == ["user:ana"]
    assert notice["data"]["event_type"] == "milestone.released"
    assert engine.balance("user:ben") == 46000


def test_sc2_request_before_work_started_refunds_automatically_with_the_client_fee(
    engine: Driver,
) -> None:
    """SC-2: a cancellation before work: client gets 500.00 + 20.00 back, nothing is kept."""
    engine.open()
    engine.fund(processor_fee=1538)
    result = engine.request("r1", 50000, T0 + DAY)
    assert result.status == "applied"
    assert engine.balances(*PARTIES) == {
        "user:ana": 52000,
        "user:ben": 0,
        "escrow:m1": 0,
        "platform:fees": 0,
    }
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"]["cause"] == "automatic"
    assert completed["data"]["request_id"] == "r1"
    assert completed["data"]["credited_to_client_minor"] == 52000
    assert engine.refund_request("r1").status == "completed"
    assert engine.target().status == "refunded"
    assert engine.audit_ok()


def test_sc2_partial_automatic_refund_then_release_charges_the_creator_fee_on_the_rest(
    engine: Driver,
) -> None:
    """SC-2 + SC-6: refund 100.00 of 500.00 from escrow (104.00 back), release 400.00: the
    creator fee charged is 8% of 400.00."""
    engine.open()
    engine.fund()
    engine.request("r1", 10000, T0 + DAY)
    assert engine.target().status == "funded"
    engine.release(T0 + 2 * DAY)
    assert engine.balances(*PARTIES) == {
        "user:ana": 10400,
        "user:ben": 40000 - 3200,
        "escrow:m1": 0,
        "platform:fees": 1600 + 3200,
    }


def test_sc3_request_after_work_started_opens_a_dispute_with_the_request_id(
    engine: Driver,
) -> None:
    """SC-3: no money moves; `dispute.opened` goes to both sides and the dispute team."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    assert engine.request("r1", 50000, T0 + 2 * DAY).status == "applied"
    assert engine.balance("escrow:m1") == 50000
    assert engine.balance("user:ana") == 0
    (opened,) = engine.notifications("dispute.opened")
    assert opened["recipients"] == ["dispute_team", "user:ana", "user:ben"]
    assert opened["data"]["dispute_id"] == "r1"
    assert engine.dispute("r1").status == "open"
    assert engine.refund_request("r1").status == "disputed"


def test_sc3_partial_refund_decision_refunds_the_amount_and_releases_the_rest(
    engine: Driver,
) -> None:
    """SC-3: partial_refund of 200.00 on an unreleased milestone: client 208.00, creator
    276.00 (300.00 less 8%), fees 12.00 client fee kept + 24.00 creator fee."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.request("r1", 50000, T0 + 2 * DAY)
    result = engine.resolve("r1", "partial_refund", T0 + 3 * DAY, refund_amount_minor=20000)
    assert result.status == "applied"
    assert engine.balances(*PARTIES) == {
        "user:ana": 20800,
        "user:ben": 27600,
        "escrow:m1": 0,
        "platform:fees": 1200 + 2400,
    }
    (resolved,) = engine.notifications("dispute.resolved")
    assert resolved["data"]["refund_minor"] == 20000
    assert resolved["data"]["released_minor"] == 30000
    assert resolved["recipients"] == ["dispute_team", "user:ana", "user:ben"]
    dispute = engine.dispute("r1")
    assert (dispute.status, dispute.outcome) == ("resolved", "partial_refund")
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"]["request_id"] == "r1"
    request = engine.refund_request("r1")
    assert (request.status, request.decided_at) == ("completed", T0 + 3 * DAY)
    assert engine.audit_ok()


def test_sc3_release_to_creator_ends_the_request_that_opened_the_dispute_declined(
    engine: Driver,
) -> None:
    """SC-3: a request that became a dispute is declined when the team releases to the creator."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.request("r1", 50000, T0 + 2 * DAY)
    engine.resolve("r1", "release_to_creator", T0 + 3 * DAY)
    assert engine.balance("user:ben") == 46000
    request = engine.refund_request("r1")
    assert (request.status, request.decided_at) == ("declined", T0 + 3 * DAY)


def test_sc3_release_to_creator_decision_releases_the_escrow(engine: Driver) -> None:
    """SC-3: release_to_creator releases what is held; a second decision is refused."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.send(
        "dispute.opened",
        T0 + 2 * DAY,
        dispute_id="d1",
        contract_id="c1",
        target_id="m1",
        reason="late",
    )
    engine.resolve("d1", "release_to_creator", T0 + 3 * DAY)
    assert engine.balance("user:ben") == 46000
    again = engine.resolve("d1", "full_refund", T0 + 4 * DAY)
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    (rejected,) = engine.notifications("dispute.rejected")
    assert rejected["recipients"] == ["dispute_team"]


def test_sc6_worked_example_500_dollar_milestone_released_then_fully_refunded_gives_client_520(
    engine: Driver,
) -> None:
    """SC-6, the seed's example: the client gets $520, the creator gives back $460, the
    platform gives back $60."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.release(T0 + 3 * DAY)
    assert engine.balances("user:ben", "platform:fees") == {
        "user:ben": 46000,
        "platform:fees": 6000,
    }
    engine.request("r1", 50000, T0 + 5 * DAY)  # released: SC-4 turns it into a dispute
    engine.resolve("r1", "full_refund", T0 + 6 * DAY)
    assert engine.balances(*PARTIES) == {
        "user:ana": 52000,
        "user:ben": 0,
        "escrow:m1": 0,
        "platform:fees": 0,
    }
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"] | {"contract_id": "c1"} == {
        "contract_id": "c1",
        "target_id": "m1",
        "request_id": "r1",
        "cause": "dispute",
        "currency": "USD",
        "refund_minor": 50000,
        "client_fee_reversed_minor": 2000,
        "creator_fee_reversed_minor": 4000,
        "processor_fee_deducted_minor": 0,
        "credited_to_client_minor": 52000,
        "clawed_back_from_creator_minor": 46000,
    }
    assert engine.audit_ok()


def test_sc5_clawback_after_release_may_leave_the_creator_owing_the_platform(
    engine: Driver,
) -> None:
    """SC-5: the creator withdrew the 460.00; a full refund claws it back: -460.00."""
    engine.open()
    engine.fund()
    engine.release(T0 + DAY)
    withdrawal = engine.send(
        "withdrawal.requested",
        T0 + 2 * DAY,
        withdrawal_id="w1",
        user_id="ben",
        amount_minor=46000,
        currency="USD",
    )
    assert withdrawal.status == "applied"
    engine.send(
        "dispute.opened",
        T0 + 3 * DAY,
        dispute_id="d1",
        contract_id="c1",
        target_id="m1",
        reason="never delivered",
    )
    engine.resolve("d1", "full_refund", T0 + 4 * DAY)
    assert engine.balance("user:ben") == -46000
    assert engine.balance("user:ana") == 52000
    assert engine.audit_ok()


def test_sc7_small_refund_deducts_the_processor_fee_and_says_so_first(engine: Driver) -> None:
    """SC-7: a 15.00 refund of a 100.00 milestone whose 3.20 processor fee was not refunded:
    0.48 is deducted, and `refund.fee_deduction_notice` precedes `refund.completed`."""
    engine.open()
    engine.fund(amount=10000, processor_fee=320)
    engine.request("r1", 1500, T0 + DAY)
    assert engine.types() == ["refund.fee_deduction_notice", "refund.completed"]
    (notice,) = engine.notifications("refund.fee_deduction_notice")
    assert notice["recipients"] == ["user:ana"]
    assert notice["data"]["processor_fee_deducted_minor"] == 48
    assert engine.balance("user:ana") == 1500 + 60 - 48
    with engine.engine.begin() as conn:
        deduction = Book(conn).entries("platform:processor_fees", "USD")[-1]
    assert (deduction.debit, deduction.credit, deduction.amount_minor, deduction.code) == (
        "user:ana",
        "platform:processor_fees",
        48,
        TransferCode.PROCESSOR_FEE_DEDUCTION,
    )
    assert engine.audit_ok()


def test_sc13_cooling_off_refunds_automatically_after_work_started(engine: Driver) -> None:
    """SC-13 hook: a client in FR within 14 days of funding: SC-2 applies after work started."""
    engine.open(jurisdiction="FR")
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.request("r1", 50000, T0 + HOUR + 14 * DAY)
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"]["cause"] == "cooling_off"
    assert engine.balance("user:ana") == 52000
    assert engine.notifications("dispute.opened") == []


def test_sc11_frozen_milestone_refuses_release_refund_and_settlement(engine: Driver) -> None:
    """Frozen by a chargeback (SC-11): a release and a dispute decision are refused `frozen`,
    and the dispute waits, open, for the chargeback to resolve."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.request("r1", 50000, T0 + 2 * DAY)  # opens dispute r1
    engine.send(
        "chargeback.opened",
        T0 + 3 * DAY,
        chargeback_id="cb1",
        payment_id="pay-m1",
        amount_minor=52000,
        issuer_fee_minor=1500,
    )
    assert engine.target().frozen
    assert engine.release(T0 + 4 * DAY).reason == "frozen"
    assert engine.resolve("r1", "full_refund", T0 + 4 * DAY).reason == "frozen"
    assert engine.dispute("r1").status == "open"
    assert engine.balance("escrow:m1") == 50000


def test_unknown_milestone_is_an_unknown_subject_and_writes_nothing(engine: Driver) -> None:
    engine.open()
    with pytest.raises(UnknownSubject):
        engine.request("r1", 100, T0 + DAY, target_id="m-missing")
    with engine.engine.begin() as conn:
        assert conn.execute(select(inbox.c.event_id)).all() == [("evt-1",)]


def test_a_redelivered_request_refunds_once(engine: Driver) -> None:
    """Idempotency: the same event applied twice changes nothing the second time."""
    engine.open()
    engine.fund()
    first = engine.request("r1", 10000, T0 + DAY)
    again = engine.send(
        "refund.requested",
        T0 + DAY,
        event_id="evt-3",
        request_id="r1",
        contract_id="c1",
        target_id="m1",
        amount_minor=10000,
        reason="not what we agreed",
    )
    assert (first.status, again.status) == ("applied", "duplicate")
    assert engine.balance("user:ana") == 10400
    assert len(engine.notifications("refund.completed")) == 1


def test_request_id_reuse_and_amount_beyond_what_is_left_are_refused(engine: Driver) -> None:
    """`invalid_state` for a reused request id; CC-4 / `exceeds_refundable` on amounts."""
    engine.open()
    engine.fund("m1", 30000)
    engine.fund("m2", 20000)
    engine.request("r1", 10000, T0 + DAY)
    assert engine.request("r1", 100, T0 + DAY).reason == "invalid_state"
    assert engine.request("r2", 20001, T0 + DAY).reason == "exceeds_refundable"
    assert engine.request("r3", 40001, T0 + DAY).reason == "exceeds_contract_total"
    rejected = engine.notifications("refund.rejected")
    assert [item["data"]["reason"] for item in rejected] == [
        "invalid_state",
        "exceeds_refundable",
        "exceeds_contract_total",
    ]
    assert all(item["recipients"] == ["user:ana"] for item in rejected)
    assert engine.refund_request("r2").status == "rejected"


# spectrum: deadlines ------------------------------------------------------------------------


def test_sc4_milestone_becomes_final_at_the_tick_after_its_window_and_later_disputes_expire(
    engine: Driver,
) -> None:
    """SC-4: released day 1, contract closed day 2: final at day 31 (tick), after which a
    dispute is `window_expired`; one that happened in time but arrives late is accepted."""
    engine.open()
    engine.fund()
    released = T0 + DAY
    engine.release(released)
    engine.send("contract.closed", T0 + 2 * DAY, contract_id="c1")
    engine.tick(released + 30 * DAY - HOUR)
    assert engine.target().status == "released"
    engine.tick(released + 30 * DAY + HOUR)
    assert engine.target().status == "final"
    (finalized,) = engine.notifications("milestone.finalized")
    assert finalized["recipients"] == ["user:ana", "user:ben"]
    late = engine.send(
        "dispute.opened",
        released + 31 * DAY,
        dispute_id="d1",
        contract_id="c1",
        target_id="m1",
        reason="broken",
    )
    assert late.reason == "window_expired"
    in_time = engine.send(
        "dispute.opened",
        released + 30 * DAY,
        dispute_id="d2",
        contract_id="c1",
        target_id="m1",
        reason="broken",
    )
    assert in_time.status == "applied"


def test_sc4_window_stays_open_while_the_contract_is_open_and_ends_at_its_close(
    engine: Driver,
) -> None:
    """SC-4: "whichever is longer": no finality before the close, which is after day 30."""
    engine.open()
    engine.fund()
    engine.release(T0 + DAY)
    engine.tick(T0 + 90 * DAY)
    assert engine.target().status == "released"
    engine.send("contract.closed", T0 + 100 * DAY, contract_id="c1")
    engine.tick(T0 + 100 * DAY + HOUR)
    assert engine.target().status == "final"
    assert engine.request("r1", 100, T0 + 101 * DAY).reason == "window_expired"


def test_sc14_open_dispute_is_overdue_once_after_five_days(engine: Driver) -> None:
    """SC-14: `dispute.overdue` to the dispute team once, at opened_at + 5 days."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    opened = T0 + 2 * DAY
    engine.request("r1", 50000, opened)
    engine.tick(opened + 5 * DAY - HOUR)
    assert engine.notifications("dispute.overdue") == []
    engine.tick(opened + 5 * DAY)
    engine.tick(opened + 8 * DAY)
    (overdue,) = engine.notifications("dispute.overdue")
    assert overdue["recipients"] == ["dispute_team"]
    assert overdue["data"]["sla_days"] == 5
    assert engine.dispute("r1").overdue_notified_at == opened + 5 * DAY


def test_sc14_dispute_resolved_in_time_raises_nothing(engine: Driver) -> None:
    """SC-14: resolved before the SLA: the deadline fires nothing."""
    engine.open()
    engine.fund()
    engine.start_work(T0 + DAY)
    engine.request("r1", 50000, T0 + 2 * DAY)
    engine.resolve("r1", "release_to_creator", T0 + 3 * DAY)
    engine.tick(T0 + 30 * DAY)
    assert engine.notifications("dispute.overdue") == []


def test_cc7_review_window_closes_14_days_after_the_contract(engine: Driver) -> None:
    """CC-7: `review_window.closed` at closed_at + 14 days, to both sides; a pending refund
    request does not move it."""
    engine.open("cadcrowd")
    engine.fund()
    closed = T0 + 3 * DAY
    engine.send("contract.closed", closed, contract_id="c1")
    engine.request("r1", 1000, closed + DAY)  # waits for the creator
    engine.tick(closed + 14 * DAY - HOUR)
    assert engine.notifications("review_window.closed") == []
    engine.tick(closed + 14 * DAY)
    (window,) = engine.notifications("review_window.closed")
    assert window["recipients"] == ["user:ana", "user:ben"]
    assert window["data"]["closed_at"] == "2026-03-05T09:00:00Z"


# cadcrowd -----------------------------------------------------------------------------------


def test_cc2_request_goes_to_the_creator_who_approves_part_of_it(engine: Driver) -> None:
    """CC-2 + CC-12: `refund.requested` to the creator; the approval refunds from escrow,
    with no fees under cadcrowd."""
    engine.open("cadcrowd")
    engine.fund(processor_fee=1480)
    engine.request("r1", 20000, T0 + DAY)
    (asked,) = engine.notifications("refund.requested")
    assert asked["recipients"] == ["user:ben"]
    assert engine.balance("user:ana") == 0
    approved = engine.send(
        "refund.approved",
        T0 + 2 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=15000,
        approved_by="creator",
        request_id="r1",
    )
    assert approved.status == "applied"
    assert engine.balances(*PARTIES) == {
        "user:ana": 15000,
        "user:ben": 0,
        "escrow:m1": 35000,
        "platform:fees": 0,
    }
    assert engine.refund_request("r1").status == "completed"
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"]["cause"] == "approved"
    assert engine.audit_ok()


def test_cc2_creator_declines_and_a_second_decision_is_refused(engine: Driver) -> None:
    """CC-2: `refund.declined` to the client; the request is settled once."""
    engine.open("cadcrowd")
    engine.fund()
    engine.request("r1", 20000, T0 + DAY)
    engine.send(
        "refund.declined", T0 + 2 * DAY, request_id="r1", contract_id="c1", declined_by="creator"
    )
    (declined,) = engine.notifications("refund.declined")
    assert declined["recipients"] == ["user:ana"]
    assert engine.refund_request("r1").status == "declined"
    late = engine.send(
        "refund.approved",
        T0 + 3 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=100,
        approved_by="creator",
        request_id="r1",
    )
    assert late.reason == "invalid_state"
    (rejected,) = engine.notifications("refund.rejected")
    assert rejected["recipients"] == ["user:ben"]


def test_cc2_creator_refunds_a_released_milestone_unasked(engine: Driver) -> None:
    """CC-2 / CC-10: a voluntary refund of released money is clawed back from the creator."""
    engine.open("cadcrowd")
    engine.fund()
    engine.release(T0 + DAY)
    engine.send(
        "refund.approved",
        T0 + 2 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=5000,
        approved_by="creator",
    )
    assert engine.balances("user:ana", "user:ben") == {"user:ana": 5000, "user:ben": 45000}


def test_cc3_milestone_approval_after_180_days_needs_support_and_after_365_expires(
    engine: Driver,
) -> None:
    """CC-3 on a milestone: the window starts at its funding (`paid_at`)."""
    engine.open("cadcrowd")
    engine.fund(at=T0)
    engine.release(T0 + DAY)

    def approve(days: int, by: str) -> ApplyResult:
        return engine.send(
            "refund.approved",
            T0 + days * DAY,
            contract_id="c1",
            target_id="m1",
            amount_minor=1000,
            approved_by=by,
        )

    assert approve(180, "creator").status == "applied"
    assert approve(181, "creator").reason == "needs_support"
    assert approve(365, "support").status == "applied"
    assert approve(366, "support").reason == "window_expired"
    assert engine.balance("user:ana") == 2000


def test_cc3_invoice_approval_windows_start_at_its_payment(sqlite_engine: Engine) -> None:
    """CC-3 on an invoice: 180 days from `hourly.invoice_paid`, then support to day 365."""
    engine = Driver(sqlite_engine)
    engine.send(
        "contract.opened",
        T0,
        contract_id="c1",
        kind="hourly",
        client_id="ana",
        creator_id="ben",
        currency="USD",
        policy="cadcrowd",
    )
    paid = T0 + 7 * DAY
    engine.send(
        "hourly.invoice_paid",
        paid,
        contract_id="c1",
        invoice_id="i1",
        period_start="2026-03-02",
        payment_id="pay-i1",
        amount_minor=40000,
        processor_fee_minor=0,
    )

    def approve(after: timedelta, by: str) -> ApplyResult:
        return engine.send(
            "refund.approved",
            paid + after,
            contract_id="c1",
            target_id="i1",
            amount_minor=1000,
            approved_by=by,
        )

    assert approve(180 * DAY, "creator").status == "applied"
    assert approve(180 * DAY + HOUR, "creator").reason == "needs_support"
    assert approve(300 * DAY, "support").status == "applied"
    assert approve(365 * DAY + HOUR, "support").reason == "window_expired"
    assert engine.balances("user:ana", "user:ben") == {"user:ana": 2000, "user:ben": 38000}


def test_cc4_approval_beyond_the_contract_total_is_refused(engine: Driver) -> None:
    """CC-4: `exceeds_contract_total`, also on a closed contract."""
    engine.open("cadcrowd")
    engine.fund(amount=10000)
    engine.release(T0 + DAY)
    engine.send("contract.closed", T0 + 2 * DAY, contract_id="c1")
    refused = engine.send(
        "refund.approved",
        T0 + 3 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=10001,
        approved_by="creator",
    )
    assert refused.reason == "exceeds_contract_total"
    allowed = engine.send(
        "refund.approved",
        T0 + 3 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=10000,
        approved_by="creator",
    )
    assert allowed.status == "applied"


def test_cc6_reviews_hidden_once_when_the_net_value_falls_under_25_dollars(
    engine: Driver,
) -> None:
    """CC-6: a 30.00 contract; a 6.00 refund leaves 24.00: `reviews.hidden` once."""
    engine.open("cadcrowd")
    engine.fund(amount=3000)
    approve = {"contract_id": "c1", "target_id": "m1", "approved_by": "creator"}
    engine.send("refund.approved", T0 + DAY, amount_minor=500, **approve)
    assert engine.notifications("reviews.hidden") == []
    engine.send("refund.approved", T0 + 2 * DAY, amount_minor=100, **approve)
    engine.send("refund.approved", T0 + 3 * DAY, amount_minor=100, **approve)
    (hidden,) = engine.notifications("reviews.hidden")
    assert hidden["data"]["net_value_minor"] == 2400
    assert hidden["recipients"] == ["user:ana", "user:ben"]


def test_cc8_invoice_dispute_until_the_friday_after_its_week(sqlite_engine: Engine) -> None:
    """CC-8: week of Mon 2 Mar 2026: disputes until Fri 13 Mar 23:59:59 UTC; an invoice
    not paid yet cannot be disputed: it waits for its payment as an unknown subject (CC-11)."""
    engine = Driver(sqlite_engine)
    engine.send(
        "contract.opened",
        T0,
        contract_id="c1",
        kind="hourly",
        client_id="ana",
        creator_id="ben",
        currency="USD",
        policy="cadcrowd",
    )
    engine.send(
        "hourly.invoice_paid",
        T0 + 7 * DAY,
        contract_id="c1",
        invoice_id="i1",
        period_start="2026-03-02",
        payment_id="pay-i1",
        amount_minor=40000,
        processor_fee_minor=0,
    )
    friday = datetime(2026, 3, 13, 23, 59, 59, tzinfo=UTC)
    late = engine.send(
        "dispute.opened",
        friday + timedelta(seconds=1),
        dispute_id="d1",
        contract_id="c1",
        target_id="i1",
        reason="hours padded",
    )
    assert late.reason == "window_expired"
    in_time = engine.send(
        "dispute.opened",
        friday,
        dispute_id="d2",
        contract_id="c1",
        target_id="i1",
        reason="hours padded",
    )
    assert in_time.status == "applied"
    engine.resolve("d2", "partial_refund", friday + DAY, refund_amount_minor=10000)
    assert engine.balances("user:ana", "user:ben") == {"user:ana": 10000, "user:ben": 30000}
    with pytest.raises(UnknownSubject):
        engine.send(
            "dispute.opened",
            friday,
            dispute_id="d3",
            contract_id="c1",
            target_id="i-unpaid",
            reason="?",
        )


def test_cc10_released_milestone_cannot_be_disputed_under_cadcrowd(engine: Driver) -> None:
    """CC-10: `already_released`; unreleased escrow goes to the dispute team."""
    engine.open("cadcrowd")
    engine.fund("m1")
    engine.fund("m2", 20000)
    engine.release(T0 + DAY)
    released = engine.send(
        "dispute.opened",
        T0 + 2 * DAY,
        dispute_id="d1",
        contract_id="c1",
        target_id="m1",
        reason="bad",
    )
    assert released.reason == "already_released"
    (rejected,) = engine.notifications("dispute.rejected")
    assert rejected["recipients"] == ["user:ana"]
    held = engine.send(
        "dispute.opened",
        T0 + 2 * DAY,
        dispute_id="d2",
        contract_id="c1",
        target_id="m2",
        reason="bad",
    )
    assert held.status == "applied"
    engine.resolve("d2", "full_refund", T0 + 3 * DAY)
    assert engine.balances("user:ana", "escrow:m2") == {"user:ana": 20000, "escrow:m2": 0}


def test_cc12_cadcrowd_takes_no_fee_on_funding_or_release(engine: Driver) -> None:
    """CC-12: the preset charges no fees: the creator gets all of the release."""
    engine.open("cadcrowd")
    engine.fund(processor_fee=1480)
    engine.release(T0 + DAY)
    assert engine.balances("user:ben", "platform:fees") == {"user:ben": 50000, "platform:fees": 0}


# PostgreSQL: row locks serialize a contract's events ----------------------------------------


@pytest.mark.postgres
def test_sc2_two_concurrent_full_refund_requests_refund_once_on_postgres(pg_engine: Engine) -> None:
    """SC-2 under concurrency: the contract lock serializes the two requests; one refunds,
    the other finds nothing left of m1 (`exceeds_refundable`: m2 keeps the contract's value),
    and escrow never goes below zero."""
    engine = Driver(pg_engine)
    engine.open()
    engine.fund()
    engine.fund("m2")
    results: list[ApplyResult] = []
    barrier = threading.Barrier(2)

    def ask(request_id: str) -> None:
        barrier.wait()
        results.append(engine.request(request_id, 50000, T0 + DAY))

    threads = [threading.Thread(target=ask, args=(f"r{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.status for result in results) == ["applied", "rejected"]
    assert {result.reason for result in results} == {None, "exceeds_refundable"}
    assert engine.balances("user:ana", "escrow:m1") == {"user:ana": 52000, "escrow:m1": 0}
    assert engine.audit_ok()


@pytest.mark.postgres
def test_sc6_worked_example_on_postgres(pg_engine: Engine) -> None:
    """SC-6 on PostgreSQL: the same $520 / $460 / $60."""
    engine = Driver(pg_engine)
    engine.open()
    engine.fund()
    engine.release(T0 + DAY)
    engine.send(
        "dispute.opened",
        T0 + 2 * DAY,
        dispute_id="d1",
        contract_id="c1",
        target_id="m1",
        reason="wrong files",
    )
    engine.resolve("d1", "full_refund", T0 + 3 * DAY)
    assert engine.balances(*PARTIES) == {
        "user:ana": 52000,
        "user:ben": 0,
        "escrow:m1": 0,
        "platform:fees": 0,
    }
    assert engine.audit_ok()
