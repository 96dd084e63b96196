"""Integer money arithmetic: fees and their proportional reversal (SC-6), to the cent.

Rates are basis points (1/100 of a percent) so that no float ever touches an amount.
"""

from __future__ import annotations

BPS_DENOMINATOR = 10_000


def div_round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even (banker's)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def fee_minor(amount_minor: int, rate_bps: int) -> int:
    """A fee: round_half_even(rate x amount) (SC-6)."""
    return div_round_half_even(amount_minor * rate_bps, BPS_DENOMINATOR)


def share_minor(total_minor: int, part_minor: int, whole_minor: int) -> int:
    """round_half_even(total x part / whole): the part of `total` that `part` of `whole` carries."""
    return div_round_half_even(total_minor * part_minor, whole_minor)


def cumulative_reversal_minor(
    fee_total_minor: int, refunded_so_far_minor: int, amount_minor: int
) -> int:
    """Fee reversed so far after refunding `refunded_so_far` of `amount` (SC-6).

    Computing the running total, not each slice, is what makes partial refunds that add up to
    the whole reverse exactly the whole fee.
    """
    if not 0 <= refunded_so_far_minor <= amount_minor:
        raise ValueError("refunded amount must lie between 0 and the amount")
    return share_minor(fee_total_minor, refunded_so_far_minor, amount_minor)
