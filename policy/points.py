"""Claw back the points awarded for a milestone when it is refunded (SC-10).

The refund engine calls `claw_back_points` after each refund of a milestone, whatever caused
it (a request, a dispute, a chargeback), inside the same transaction: the points follow the
money. It holds the milestone's lock, and so do `points.awarded` handlers for that milestone,
so the awards read here cannot change underneath.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ledger import Transfer, TransferCode
from messages.notifications import PointsClawedBack
from policy import rows
from policy.rules.legs import user_account
from policy.rules.points import POINTS_CURRENCY, POINTS_SOURCE, clawback_due, points_account
from policy.state import PointAwardState
from policy.tables import point_awards

if TYPE_CHECKING:
    from policy.context import HandlerContext


def claw_back_points(
    context: HandlerContext, milestone_id: str, refunded_so_far_minor: int, amount_minor: int
) -> int:
    """Claw back what the awards for `milestone_id` owe once `refunded_so_far` of `amount`
    is refunded; tell each user how many points went. Returns the points clawed back."""
    awards = rows.load_matching(
        context.conn, point_awards, PointAwardState, milestone_id=milestone_id
    )
    # Transfer ids are numbered in order, so the order must not depend on the database's.
    awards.sort(key=lambda award: (award.awarded_at, award.award_id))
    transfers: list[Transfer] = []
    by_user: defaultdict[str, int] = defaultdict(int)
    for award in awards:
        due = clawback_due(award, refunded_so_far_minor, amount_minor)
        if due == 0:
            continue
        rows.save_row(
            context.conn,
            point_awards,
            dataclasses.replace(award, clawed_back_points=award.clawed_back_points + due),
        )
        transfers.append(
            context.transfer(
                points_account(award.user_id),
                POINTS_SOURCE,
                due,
                POINTS_CURRENCY,
                TransferCode.POINTS_CLAWBACK,
            )
        )
        by_user[award.user_id] += due
    context.post(transfers)
    for user_id, points in sorted(by_user.items()):
        context.notify(
            [user_account(user_id)],
            PointsClawedBack(user_id=user_id, milestone_id=milestone_id, points=points),
            key=f"{milestone_id}:{user_id}:{refunded_so_far_minor}",
        )
    return sum(by_user.values())


def lock_clawback_accounts(context: HandlerContext, milestone_ids: Sequence[str]) -> None:
    """Lock now the points accounts that `claw_back_points` may move for `milestone_ids`:
    those of every award on them, whether it will owe anything or not. An award posted its
    points, so `Book.lock` opens none of them."""
    awardees = {
        award.user_id
        for milestone_id in milestone_ids
        for award in rows.load_matching(
            context.conn, point_awards, PointAwardState, milestone_id=milestone_id
        )
    }
    if awardees:
        context.book.lock([points_account(user_id) for user_id in awardees], POINTS_CURRENCY)
