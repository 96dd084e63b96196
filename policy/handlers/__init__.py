"""One module per area; importing them registers their handlers in `policy.registry`."""

from policy.handlers import addons, points, processor_fees, ticks

__all__ = ["addons", "points", "processor_fees", "ticks"]
