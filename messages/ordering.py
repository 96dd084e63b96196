"""Ordering keys (MESSAGES.md, "Ordering"): which events the engine keeps in order.

Every event has one key: its `contract_id` where `data` has one, otherwise the id named for its
type below. Events with the same key are applied in the order the broker received them; a
producer publishes each envelope with its key as the AMQP routing key, and the engine refuses
one whose routing key differs (`misrouted`), since a wrong key would silently void the order.
"""

from __future__ import annotations

from typing import Final

from messages.inbound import Envelope

TICK_KEY: Final = "deadline.tick"
"""The routing key of `deadline.tick`: a tick is ordered against every key, not one."""

KEY_FIELD_BY_TYPE: Final[dict[str, str]] = {
    "chargeback.opened": "chargeback_id",
    "chargeback.resolved": "chargeback_id",
    "processor.fee_refunded": "payment_id",
    "addon.purchased": "addon_id",
    "addon.started": "addon_id",
    "addon.refund_requested": "addon_id",
    "points.awarded": "user_id",
    "points.cashout_paid": "user_id",
    "withdrawal.requested": "user_id",
    "points.cashout_reversed": "cashout_id",
}
"""The key field of every type whose `data` has no `contract_id`."""


def ordering_key(event: Envelope) -> str:
    """The ordering key of `event`: the routing key its producer must publish it with."""
    if event.type == TICK_KEY:
        return TICK_KEY
    field = KEY_FIELD_BY_TYPE.get(event.type, "contract_id")
    key = getattr(event.data, field, None)
    if not isinstance(key, str):
        raise LookupError(f"{event.type} has no {field}: MESSAGES.md gives it no ordering key")
    return key
