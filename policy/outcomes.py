"""What a handler returns: the event was applied, or it was refused with a reason code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from messages.notifications import ReasonCode


@dataclass(frozen=True, slots=True)
class Applied:
    status: Literal["applied"] = "applied"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A business refusal: recorded, answered with a notification, and not an error."""

    reason: ReasonCode
    detail: str = ""
    status: Literal["rejected"] = "rejected"


Outcome = Applied | Rejected
APPLIED = Applied()
