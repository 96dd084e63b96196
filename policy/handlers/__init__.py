"""One module per area; importing them registers their handlers in `policy.registry`."""

from policy.handlers import ticks

__all__ = ["ticks"]
