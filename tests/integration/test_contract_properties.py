"""Properties of any history of one contract: whatever events arrive, in whatever order, with
whatever ticks between them, the books stay sound.

Hypothesis draws sequences of events on one fixed-price `spectrum` contract (funding several
milestones on one or two payments, work started, releases, refund requests and approvals,
disputes and their decisions, chargebacks and their resolutions, processor-fee refunds,
contract closes, ticks), most of them valid, some refused, some naming what does not exist.
After each sequence:

- the ledger's audit is green (balanced per currency, balances equal their entries);
- no escrow is negative;
- refunds on the contract never exceed what was paid (per milestone and in total, in the
  state and in the money that reached the client or `platform:chargebacks`);
- fees reversed never exceed fees charged (per milestone and in the book);
- `platform:chargebacks` holds exactly A + F of each open chargeback and F of each won one
  (SC-11).

Each example runs in one transaction that is rolled back afterwards, so examples share a
migrated SQLite database and stay independent and fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, select

from ledger import Book, TransferCode, audit
from messages import parse_event
from policy.apply import apply_event
from policy.config import PolicySet, load_policies
from policy.tables import chargebacks, contracts, disputes, payments, targets
from workers.database import make_engine, migrate

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MILESTONES = ("m0", "m1", "m2", "m3")
PAYMENTS = ("p0", "p1")
CLIENT, CREATOR = "u-client", "u-creator"
POLICIES = load_policies()
REFUND_CODES = {
    TransferCode.REFUND,
    TransferCode.CLAWBACK,
    TransferCode.CLIENT_FEE_REVERSAL,
    TransferCode.CREATOR_FEE_REVERSAL,
}

percent = st.integers(min_value=1, max_value=100)
milestone = st.sampled_from(MILESTONES)
payment = st.sampled_from(PAYMENTS)
# Which earlier request, dispute or chargeback a step names (modulo how many there are);
# -1 names one that does not exist.
earlier = st.integers(min_value=-1, max_value=8)
# Minutes to weeks between events, so windows (24 h, 14 and 30 days) open and close.
gap = st.sampled_from(
    [timedelta(minutes=5), timedelta(hours=6), timedelta(days=3), timedelta(days=16)]
)

steps = st.one_of(
    st.tuples(st.just("fund"), milestone, payment, st.integers(min_value=1, max_value=90_000)),
    st.tuples(st.just("work"), milestone),
    st.tuples(st.just("release"), milestone, st.sampled_from(["client", "dispute_team"])),
    st.tuples(st.just("request"), milestone, percent),
    st.tuples(
        st.just("approve"),
        milestone,
        percent,
        st.sampled_from(["creator", "support"]),
        st.one_of(st.none(), earlier),
    ),
    st.tuples(st.just("decline"), earlier),
    st.tuples(st.just("dispute"), milestone),
    st.tuples(
        st.just("resolve"),
        earlier,
        st.sampled_from(["full_refund", "partial_refund", "release_to_creator"]),
        percent,
    ),
    st.tuples(st.just("chargeback"), payment, percent, st.integers(min_value=0, max_value=2500)),
    st.tuples(
        st.just("chargeback_resolved"), earlier, st.sampled_from(["client_won", "client_lost"])
    ),
    st.tuples(st.just("fee_refunded"), payment, percent),
    st.tuples(st.just("points"), milestone, st.integers(min_value=1, max_value=500)),
    st.tuples(st.just("tick")),
    st.tuples(st.just("close")),
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("properties") / "recourse.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


class History:
    """Turns drawn steps into envelopes and applies them, in one transaction."""

    def __init__(self, conn: Connection, policies: PolicySet) -> None:
        self.conn = conn
        self.policies = policies
        self.at = START
        self._ids = itertools.count(1)
        self.requests: list[str] = []
        self.disputes: list[str] = []
        self.chargebacks: list[str] = []

    def send(self, type_: str, **data: Any) -> None:
        body = {
            "event_id": f"e{next(self._ids)}",
            "type": type_,
            "occurred_at": self.at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        apply_event(self.conn, parse_event(body), self.policies, on_unknown_subject="reject")

    def _new(self, made: list[str], prefix: str) -> str:
        made.append(f"{prefix}{len(made)}")
        return made[-1]

    @staticmethod
    def _pick(made: list[str], index: int) -> str:
        return made[index % len(made)] if made and index >= 0 else "missing"

    def _scalar(self, column: Any, key: Any, subject_id: str) -> int | None:
        value = self.conn.scalar(select(column).where(key == subject_id))
        return None if value is None else int(value)

    def amount_of(self, milestone_id: str) -> int:
        """A milestone's amount, or a made-up one for a milestone never funded."""
        amount = self._scalar(targets.c.amount_minor, targets.c.target_id, milestone_id)
        return amount or 10_000

    def apply(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        contract = {"contract_id": "c1"}
        if kind == "fund":
            milestone_id, payment_id, amount = args
            self.send(
                "milestone.funded",
                **contract,
                milestone_id=milestone_id,
                payment_id=payment_id,
                amount_minor=amount,
                processor_fee_minor=amount * 29 // 1000,
            )
        elif kind == "work":
            self.send("work.started", **contract, milestone_id=args[0], evidence="delivery")
        elif kind == "release":
            self.send("milestone.released", **contract, milestone_id=args[0], released_by=args[1])
        elif kind == "request":
            milestone_id, share = args
            self.send(
                "refund.requested",
                **contract,
                request_id=self._new(self.requests, "r"),
                target_id=milestone_id,
                amount_minor=_part(self.amount_of(milestone_id), share),
                reason="not what was agreed",
            )
        elif kind == "approve":
            milestone_id, share, approved_by, request = args
            self.send(
                "refund.approved",
                **contract,
                target_id=milestone_id,
                amount_minor=_part(self.amount_of(milestone_id), share),
                approved_by=approved_by,
                **({} if request is None else {"request_id": self._pick(self.requests, request)}),
            )
        elif kind == "decline":
            self.send(
                "refund.declined",
                **contract,
                request_id=self._pick(self.requests, args[0]),
                declined_by="creator",
            )
        elif kind == "dispute":
            self.send(
                "dispute.opened",
                **contract,
                dispute_id=self._new(self.disputes, "d"),
                target_id=args[0],
                reason="work not delivered",
            )
        elif kind == "resolve":
            dispute, outcome, share = args
            # A request that met started work opened a dispute under its own id (SC-3).
            dispute_id = self._pick(self.disputes + self.requests, dispute)
            amount = 10_000 if dispute_id == "missing" else self._dispute_amount(dispute_id)
            self.send(
                "dispute.resolved",
                **contract,
                dispute_id=dispute_id,
                outcome=outcome,
                **(
                    {"refund_amount_minor": _part(amount, share)}
                    if outcome == "partial_refund"
                    else {}
                ),
            )
        elif kind == "chargeback":
            payment_id, share, issuer_fee = args
            charge = self._scalar(payments.c.charge_total_minor, payments.c.payment_id, payment_id)
            self.send(
                "chargeback.opened",
                chargeback_id=self._new(self.chargebacks, "cb"),
                payment_id=payment_id,
                amount_minor=_part(charge or 10_000, share),
                issuer_fee_minor=issuer_fee,
            )
        elif kind == "chargeback_resolved":
            chargeback, outcome = args
            self.send(
                "chargeback.resolved",
                chargeback_id=self._pick(self.chargebacks, chargeback),
                outcome=outcome,
            )
        elif kind == "fee_refunded":
            payment_id, share = args
            fee = self._scalar(payments.c.processor_fee_minor, payments.c.payment_id, payment_id)
            self.send(
                "processor.fee_refunded",
                payment_id=payment_id,
                amount_minor=_part(fee or 100, share),
            )
        elif kind == "points":
            self.send("points.awarded", user_id=CREATOR, points=args[1], milestone_id=args[0])
        elif kind == "tick":
            self.send("deadline.tick")
        elif kind == "close":
            self.send("contract.closed", **contract)

    def _dispute_amount(self, dispute_id: str) -> int:
        target_id = self.conn.scalar(
            select(disputes.c.target_id).where(disputes.c.dispute_id == dispute_id)
        )
        return self.amount_of(target_id) if target_id else 10_000


def _part(whole: int, share_percent: int) -> int:
    return max(1, whole * share_percent // 100)


def _check_books(conn: Connection) -> None:
    report = audit(conn)
    assert report.ok, report.problems
    book = Book(conn)
    balances = book.balances()
    for name, by_currency in balances.items():
        if name.startswith("escrow:"):
            assert all(amount >= 0 for amount in by_currency.values()), (name, by_currency)

    contract = conn.execute(select(contracts).where(contracts.c.contract_id == "c1")).one()
    paid_targets = conn.execute(select(targets).where(targets.c.contract_id == "c1")).all()
    assert contract.refunded_total_minor <= contract.paid_total_minor
    assert contract.refunded_total_minor == sum(t.refunded_minor for t in paid_targets)
    for target in paid_targets:
        assert 0 <= target.refunded_minor <= target.amount_minor, target
        assert 0 <= target.client_fee_reversed_minor <= target.client_fee_minor, target
        assert 0 <= target.creator_fee_reversed_minor <= target.creator_fee_minor, target

    charged_total = sum(
        row.charge_total_minor
        for row in conn.execute(select(payments).where(payments.c.contract_id == "c1"))
    )
    paid_back = sum(
        entry.amount_minor
        for account in (f"user:{CLIENT}", "platform:chargebacks")
        for entry in book.entries(account, "USD")
        if entry.code in REFUND_CODES and entry.credit == account
    )
    assert paid_back <= charged_total

    fee_entries = book.entries("platform:fees", "USD")
    by_code: dict[TransferCode, int] = {}
    for entry in fee_entries:
        by_code[entry.code] = by_code.get(entry.code, 0) + entry.amount_minor
    assert by_code.get(TransferCode.CLIENT_FEE_REVERSAL, 0) <= by_code.get(
        TransferCode.CLIENT_FEE, 0
    )
    assert by_code.get(TransferCode.CREATOR_FEE_REVERSAL, 0) <= by_code.get(
        TransferCode.CREATOR_FEE, 0
    )
    assert book.balance("platform:fees", "USD").available_minor >= 0

    expected_cost = 0
    for chargeback in conn.execute(select(chargebacks)):
        if chargeback.status == "open":
            expected_cost += chargeback.amount_minor + chargeback.issuer_fee_minor
        elif chargeback.outcome == "client_won":
            expected_cost += chargeback.issuer_fee_minor
    assert -book.balance("platform:chargebacks", "USD").available_minor == expected_cost


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    jurisdiction=st.sampled_from([None, "US", "DE"]),
    fundings=st.lists(
        st.tuples(milestone, payment, st.integers(min_value=1, max_value=90_000)),
        min_size=1,
        max_size=3,
    ),
    history=st.lists(st.tuples(gap, steps), min_size=5, max_size=40),
)
def test_any_history_keeps_the_books_sound(
    engine: Engine,
    jurisdiction: str | None,
    fundings: list[tuple[str, str, int]],
    history: list[tuple[timedelta, tuple[Any, ...]]],
) -> None:
    """SC-1, SC-6, SC-11 and CC-4 hold over random histories of one contract."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            events = History(conn, POLICIES)
            events.send(
                "contract.opened",
                contract_id="c1",
                kind="fixed",
                client_id=CLIENT,
                creator_id=CREATOR,
                currency="USD",
                policy="spectrum",
                **({"client_jurisdiction": jurisdiction} if jurisdiction else {}),
            )
            for milestone_id, payment_id, amount in fundings:
                events.apply(("fund", milestone_id, payment_id, amount))
            for wait, step in history:
                events.at += wait
                events.apply(step)
            _check_books(conn)
        finally:
            transaction.rollback()
