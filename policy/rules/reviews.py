"""Reviews: hidden when a refund leaves a contract almost worthless (CC-6), and the window to
post them, which closes a fixed time after the contract does (CC-7)."""

from __future__ import annotations

from datetime import datetime

from policy.config import Reviews, Windows
from policy.state import ContractState
from scheduler.calendar import window_end


def hides_reviews(contract: ContractState, reviews: Reviews) -> bool:
    """CC-6: True at the first refund that leaves the contract's net value under the limit.

    `contract` is the state after the refund; once hidden, reviews stay hidden, so a later
    refund never asks again.
    """
    return not contract.reviews_hidden and contract.net_value_minor < reviews.hide_below_minor


def review_window_end(closed_at: datetime, windows: Windows) -> datetime:
    """CC-7: the last instant to post a review; a pending refund request does not move it."""
    return window_end(closed_at, days=windows.review_window_days)
