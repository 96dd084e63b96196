"""Dramatiq middleware of the workers, one class per module.

Order matters: Dramatiq calls `before_*` hooks in list order and `after_*` hooks in reverse, so
`LogContext` comes first (its context is bound before, and cleared after, everything else).
"""

from workers.middleware.log_context import LogContext
from workers.middleware.message_metrics import MessageMetrics

__all__ = ["LogContext", "MessageMetrics"]
