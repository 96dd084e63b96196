"""The message contract of MESSAGES.md in code: inbound events, notifications, readers."""

from messages.errors import MalformedMessage, MessageError, PublishError
from messages.inbound import Envelope
from messages.notifications import Notification, NotificationData, ReasonCode
from messages.registry import EVENT_MODELS, parse_event, parse_notification

__all__ = [
    "EVENT_MODELS",
    "Envelope",
    "MalformedMessage",
    "MessageError",
    "Notification",
    "NotificationData",
    "PublishError",
    "ReasonCode",
    "parse_event",
    "parse_notification",
]
