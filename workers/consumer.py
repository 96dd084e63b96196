"""The workers' RabbitMQ broker: Dramatiq's, with a consumer that acks only what its own
channel delivered.

Dramatiq's worker acks a message through whichever consumer its queue has *now*
(`ConsumerThread.post_process_message` reads `self.consumer`). When the broker connection
drops, the consumer thread opens a new connection and channel while worker threads still hold
messages of the old one (prefetched, or being processed), and their acks then go to the new
channel. Delivery tags are counted per channel from 1, so such an ack takes away whatever the
new channel delivered under the same number: a message nobody has processed yet is acked, and
is gone for good if the process stops before it gets to it; a nack dead-letters an unrelated
message. The fault runs (docs/reliability.md) hit this after every broker outage.

An ack or a nack of a channel that closed cannot reach RabbitMQ anyway: RabbitMQ put those
messages back in their queue when the channel died, and delivers them again, which the inbox
turns into a duplicate. So this consumer stamps each message it delivers, and acks or nacks a
message only if it delivered it, and only while its connection is open. That also spares a
worker thread Dramatiq's retry loop (five seconds a turn) around an ack that cannot succeed.
"""

from __future__ import annotations

from typing import Any

import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

log = structlog.get_logger(__name__)

DELIVERED_BY = "_recourse_delivered_by"
"""The attribute of a delivered message that names the consumer whose channel delivered it."""


class ChannelBoundConsumer(_RabbitmqConsumer):
    def __next__(self) -> MessageProxy | None:
        # Dramatiq's consumer methods carry no annotations.
        message: MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]
        if message is not None:
            setattr(message, DELIVERED_BY, self)
        return message

    def ack(self, message: MessageProxy) -> None:
        if self._delivered(message, "ack"):
            try:
                super().ack(message)  # type: ignore[no-untyped-call]
            except ConnectionClosed:
                self._left_to_redelivery(message, "ack")

    def nack(self, message: MessageProxy) -> None:
        if self._delivered(message, "nack"):
            try:
                super().nack(message)  # type: ignore[no-untyped-call]
            except ConnectionClosed:
                self._left_to_redelivery(message, "nack")

    def _delivered(self, message: MessageProxy, action: str) -> bool:
        # `vars`, not getattr: a proxy forwards unknown attributes to its message.
        if vars(message).get(DELIVERED_BY) is self:
            return True
        self._left_to_redelivery(message, action)
        return False

    def _left_to_redelivery(self, message: MessageProxy, action: str) -> None:
        log.info(
            "consumer.delivery_channel_closed",
            action=action,
            message_id=message.message_id,
            queue=self.queue_name,
        )


class ChannelBoundRabbitmqBroker(RabbitmqBroker):
    @property
    def consumer_class(self) -> type[Any]:
        return ChannelBoundConsumer
