"""One module per area; importing them registers their handlers in `policy.registry`."""

from policy.handlers import addons, chargebacks, points, processor_fees, ticks

__all__ = ["addons", "chargebacks", "points", "processor_fees", "ticks"]
