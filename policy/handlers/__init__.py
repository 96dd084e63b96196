"""One module per area; importing them registers their handlers in `policy.registry`."""

from policy.handlers import (
    addons,
    chargebacks,
    contracts,
    disputes,
    milestones,
    points,
    processor_fees,
    refunds,
    ticks,
)

__all__ = [
    "addons",
    "chargebacks",
    "contracts",
    "disputes",
    "milestones",
    "points",
    "processor_fees",
    "refunds",
    "ticks",
]
