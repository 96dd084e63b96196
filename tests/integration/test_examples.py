"""The example stories in examples/ replayed on SQLite, checked to the cent.

Each story is a week of a small marketplace (with an epilogue of ticks and late events that
shows the windows closing). Balances are from the owner's side (MESSAGES.md): what the
platform owes a user, what escrow holds, what the platform earned, and, for
`platform:processor_fees`, what the platform bears. `external:*` accounts mirror the card,
the processor and the bank, outside the platform, and are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import audit
from policy.config import load_policies
from workers.replay import ReplayReport, replay_lines

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _replay(engine: Engine, name: str) -> ReplayReport:
    lines = (EXAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    # A fresh file, as `recourse replay` makes one without --db.
    report = replay_lines(engine, lines, load_policies(), own_database=True)
    with engine.connect() as conn:
        books = audit(conn)
    assert books.ok, books.problems
    return report


def _platform_balances(report: ReplayReport) -> dict[str, int]:
    return {
        account: amounts["USD"]
        for account, amounts in report.balances.items()
        if not account.startswith("external:")
    }


def _trail(report: ReplayReport) -> list[tuple[str, str, list[str]]]:
    """(notification id, type, recipients) of every notification, in outbox order."""
    return [(n["notification_id"], n["type"], n["recipients"]) for n in report.notifications]


def _data(report: ReplayReport, notification_id: str) -> dict[str, Any]:
    (found,) = [n for n in report.notifications if n["notification_id"] == notification_id]
    data: dict[str, Any] = found["data"]
    return data


@pytest.fixture
def spectrum_week(sqlite_engine: Engine) -> ReplayReport:
    return _replay(sqlite_engine, "spectrum-week.jsonl")


@pytest.fixture
def cadcrowd_week(sqlite_engine: Engine) -> ReplayReport:
    return _replay(sqlite_engine, "cadcrowd-week.jsonl")


def test_spectrum_week_balances_to_the_cent(spectrum_week: ReplayReport) -> None:
    """SC-1 to SC-7 and SC-14 over a week of four spectrum contracts (4% client fee, 8%
    creator fee)."""
    assert _platform_balances(spectrum_week) == {
        # m-logo 500.00: released (460.00 to ben), disputed, fully refunded: 500 + 20 back
        # (SC-6 worked example). m-copy 100.00: 15.00 refunded before work with its 0.60
        # client fee, less the SC-7 deduction of 3.20 x 15 / 100 = 0.48: 15.12.
        "user:ana": 52000 + 1512,
        # m-banner 250.00 released, less 20.00 creator fee; m-logo's 460.00 clawed back.
        "user:ben": 23000,
        # m-design 800.00 cancelled before work (SC-2): 832.00. m-build 1,200.00 disputed
        # after kickoff (SC-3), decided 300.00 refunded with its 12.00 client fee.
        "user:carla": 83200 + 31200,
        # m-copy's 85.00 left, less 8% of it (6.80): 78.20. m-build's 900.00 released by the
        # decision, less 8% of it (72.00): 828.00.
        "user:dev": 7820 + 82800,
        "escrow:m-logo": 0,
        "escrow:m-design": 0,
        "escrow:m-build": 0,
        "escrow:m-copy": 0,
        "escrow:m-banner": 0,
        # Kept: m-build 48.00 - 12.00 + 72.00, m-copy 4.00 - 0.60 + 6.80, m-banner
        # 10.00 + 20.00; m-logo and m-design gave everything back.
        "platform:fees": 10800 + 1020 + 3000,
        # 14.80 + 23.50 + 35.10 + 3.20 + 7.55 paid to the processor, less ana's 0.48.
        "platform:processor_fees": 8415 - 48,
    }


def test_spectrum_week_rejections_dead_letters_and_duplicates(spectrum_week: ReplayReport) -> None:
    assert spectrum_week.rejections == [
        {"event_id": "spw-10", "reason": "exceeds_refundable"},  # 1,250.00 of a 1,200.00 one
        {"event_id": "spw-18", "reason": "invalid_state"},  # releasing a refunded milestone
        {"event_id": "spw-25", "reason": "unknown_subject"},  # m-ghost was never funded
        {"event_id": "spw-37", "reason": "window_expired"},  # SC-4: m-banner is final
    ]
    (dead,) = spectrum_week.dead_letters
    assert dead["line"] == 26
    assert "data.amount_minor" in dead["error"]
    assert spectrum_week.duplicates == 1


def test_spectrum_week_notifications(spectrum_week: ReplayReport) -> None:
    """Every notification, in order: who hears what, once."""
    ana, ben, carla, dev, erin = (f"user:{u}" for u in ("ana", "ben", "carla", "dev", "erin"))
    team = "dispute_team"
    assert _trail(spectrum_week) == [
        ("spw-10:refund.rejected", "refund.rejected", [carla]),
        ("spw-15:dispute.opened", "dispute.opened", [team, ben, erin]),
        ("spw-16:refund.completed:m-design", "refund.completed", [carla, dev]),
        ("spw-18:event.rejected", "event.rejected", [carla]),
        ("spw-19:refund.fee_deduction_notice:m-copy", "refund.fee_deduction_notice", [ana]),
        ("spw-19:refund.completed:m-copy", "refund.completed", [ana, dev]),
        ("spw-21:dispute.opened", "dispute.opened", [team, carla, dev]),
        ("spw-24:dispute.opened", "dispute.opened", [team, ana, ben]),
        ("spw-25:event.rejected", "event.rejected", ["support"]),
        ("spw-27:refund.completed:m-build", "refund.completed", [carla, dev]),
        ("spw-27:dispute.resolved", "dispute.resolved", [team, carla, dev]),
        ("spw-28:refund.completed:m-logo", "refund.completed", [ana, ben]),
        ("spw-28:reviews.hidden", "reviews.hidden", [ana, ben]),
        ("spw-28:dispute.resolved", "dispute.resolved", [team, ana, ben]),
        # SC-14: d-banner opened Tue 15:00, still open at Sunday's tick; req-build and
        # req-logo were decided in time and raise nothing.
        ("deadline:dispute.overdue:d-banner:dispute.overdue", "dispute.overdue", [team]),
        ("spw-33:dispute.resolved", "dispute.resolved", [team, ben, erin]),
        # The April tick: CC-7 review windows (14 days after each close), then SC-4.
        (
            "deadline:review_window.close:c-logo:review_window.closed",
            "review_window.closed",
            [ana, ben],
        ),
        (
            "deadline:review_window.close:c-banner:review_window.closed",
            "review_window.closed",
            [ben, erin],
        ),
        (
            "deadline:review_window.close:c-site:review_window.closed",
            "review_window.closed",
            [carla, dev],
        ),
        (
            "deadline:milestone.finalize:m-banner:milestone.finalized",
            "milestone.finalized",
            [ben, erin],
        ),
        (
            "deadline:milestone.finalize:m-build:milestone.finalized",
            "milestone.finalized",
            [carla, dev],
        ),
        ("spw-37:dispute.rejected", "dispute.rejected", [erin]),
    ]


def test_spectrum_week_sc6_and_sc7_details(spectrum_week: ReplayReport) -> None:
    """SC-6: the platform gives back 60.00 on m-logo; SC-7: 0.48 deducted on m-copy."""
    logo = _data(spectrum_week, "spw-28:refund.completed:m-logo")
    assert (
        logo["client_fee_reversed_minor"],
        logo["creator_fee_reversed_minor"],
        logo["clawed_back_from_creator_minor"],
        logo["credited_to_client_minor"],
    ) == (2000, 4000, 46000, 52000)
    copy = _data(spectrum_week, "spw-19:refund.completed:m-copy")
    assert (copy["processor_fee_deducted_minor"], copy["credited_to_client_minor"]) == (48, 1512)
    build = _data(spectrum_week, "spw-27:dispute.resolved")
    assert (build["refund_minor"], build["released_minor"]) == (30000, 90000)


def test_cadcrowd_week_balances_to_the_cent(cadcrowd_week: ReplayReport) -> None:
    """CC-1 to CC-12 over a week of three cadcrowd contracts: no fees (CC-12)."""
    assert _platform_balances(cadcrowd_week) == {
        # k-m1: gus approved 80.00 of the 100.00 asked (CC-2); k-m3: 6.00 unasked; k-m2:
        # 10.00 approved by support on day 184 (CC-3).
        "user:fay": 8000 + 600 + 1000,
        # k-m2 700.00 released; k-m1's 220.00 left released by the dispute decision; 10.00
        # clawed back on k-m2.
        "user:gus": 70000 + 22000 - 1000,
        # inv-w09: 60.00 approved by support after the escalation (CC-9), 40.00 decided by
        # the dispute team (CC-8).
        "user:hal": 6000 + 4000,
        # Two invoices paid straight to her balance (CC-1), less the two refunds of inv-w09.
        "user:ivy": 48000 + 36000 - 6000 - 4000,
        "escrow:k-m1": 0,
        "escrow:k-m2": 0,
        "escrow:k-m3": 2400,  # 30.00 funded, 6.00 refunded, never released
        # 9.00 + 20.60 + 14.22 + 1.17 + 10.74 paid to the processor; nothing deducted.
        "platform:processor_fees": 5573,
    }


def test_cadcrowd_week_rejections_dead_letters_and_duplicates(
    cadcrowd_week: ReplayReport,
) -> None:
    assert cadcrowd_week.rejections == [
        {"event_id": "cdw-17", "reason": "already_released"},  # CC-10
        {"event_id": "cdw-22", "reason": "exceeds_contract_total"},  # CC-4: 1,000 of 920
        {"event_id": "cdw-27", "reason": "window_expired"},  # CC-8: Saturday is too late
        {"event_id": "cdw-32", "reason": "invalid_state"},  # declining a refunded request
        {"event_id": "cdw-37", "reason": "needs_support"},  # CC-3: day 183, by the creator
        {"event_id": "cdw-39", "reason": "window_expired"},  # CC-3: past day 365
    ]
    (dead,) = cadcrowd_week.dead_letters
    assert dead["line"] == 24
    assert "refund.cancelled" in dead["error"]
    assert cadcrowd_week.duplicates == 1


def test_cadcrowd_week_notifications(cadcrowd_week: ReplayReport) -> None:
    fay, gus, hal, ivy = (f"user:{u}" for u in ("fay", "gus", "hal", "ivy"))
    team = "dispute_team"
    assert _trail(cadcrowd_week) == [
        ("cdw-10:refund.requested", "refund.requested", [gus]),  # CC-2: to the expert
        ("cdw-11:refund.requested", "refund.requested", [ivy]),
        ("cdw-14:refund.completed:k-m1", "refund.completed", [fay, gus]),
        ("cdw-15:refund.declined", "refund.declined", [hal]),
        ("cdw-16:refund.escalated", "refund.escalated", ["support", hal, ivy]),
        ("cdw-17:dispute.rejected", "dispute.rejected", [fay]),
        ("cdw-19:refund.completed:inv-w09", "refund.completed", [hal, ivy]),
        ("cdw-20:refund.completed:k-m3", "refund.completed", [fay, ivy]),
        ("cdw-20:reviews.hidden", "reviews.hidden", [fay, ivy]),  # CC-6: 24.00 left
        ("cdw-21:dispute.opened", "dispute.opened", [team, fay, gus]),
        ("cdw-22:refund.rejected", "refund.rejected", [gus]),
        ("cdw-24:dispute.opened", "dispute.opened", [team, hal, ivy]),
        ("cdw-25:refund.completed:inv-w09", "refund.completed", [hal, ivy]),
        ("cdw-25:dispute.resolved", "dispute.resolved", [team, hal, ivy]),
        ("cdw-27:dispute.rejected", "dispute.rejected", [hal]),
        ("cdw-32:refund.rejected", "refund.rejected", ["support"]),
        # SC-14 under cadcrowd too: kd-2 opened Thu 11:00, open at Tuesday's tick.
        ("deadline:dispute.overdue:kd-2:dispute.overdue", "dispute.overdue", [team]),
        ("cdw-34:dispute.resolved", "dispute.resolved", [team, fay, gus]),
        # CC-7: 14 days after each close; no SC-4 finality under cadcrowd (CC-10).
        (
            "deadline:review_window.close:k-hours:review_window.closed",
            "review_window.closed",
            [hal, ivy],
        ),
        (
            "deadline:review_window.close:k-cad:review_window.closed",
            "review_window.closed",
            [fay, gus],
        ),
        ("cdw-37:refund.rejected", "refund.rejected", [gus]),
        ("cdw-38:refund.completed:k-m2", "refund.completed", [fay, gus]),
        ("cdw-39:refund.rejected", "refund.rejected", ["support"]),
    ]
    released = _data(cadcrowd_week, "cdw-34:dispute.resolved")
    assert (released["outcome"], released["released_minor"]) == ("release_to_creator", 22000)
