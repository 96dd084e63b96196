"""One module per area; importing them registers their handlers in `policy.registry`."""

from policy.handlers import (
    addons,
    chargebacks,
    contracts,
    disputes,
    escalations,
    invoices,
    milestones,
    points,
    processor_fees,
    refunds,
    ticks,
    withdrawals,
)

__all__ = [
    "addons",
    "chargebacks",
    "contracts",
    "disputes",
    "escalations",
    "invoices",
    "milestones",
    "points",
    "processor_fees",
    "refunds",
    "ticks",
    "withdrawals",
]
