"""SC-8: no subscriptions exist, so the engine has no subscription logic anywhere."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any

from messages.inbound import INBOUND_EVENTS
from messages.notifications import NOTIFICATION_DATA
from policy.config import PRESET_NAMES, Fees, JurisdictionRule, PolicyConfig, Windows
from policy.registry import HANDLERS
from policy.ticks import DEADLINE_HANDLERS

WORD = "subscri"


def _keys(table: dict[str, Any]) -> Iterator[str]:
    for key, value in table.items():
        yield key
        if isinstance(value, dict):
            yield from _keys(value)


def test_sc8_no_event_or_notification_type_mentions_subscriptions() -> None:
    types = [model.model_fields["type"].annotation for model in INBOUND_EVENTS]
    names = [str(t) for t in types] + list(NOTIFICATION_DATA)
    assert len(names) > 20
    assert not [name for name in names if WORD in name.lower()]


def test_sc8_no_handler_or_deadline_mentions_subscriptions() -> None:
    assert HANDLERS
    described = [
        f"{kind} {function.__module__}.{function.__qualname__}"
        for kind, function in (*HANDLERS.items(), *DEADLINE_HANDLERS.items())
    ]
    assert not [text for text in described if WORD in text.lower()]


def test_sc8_presets_have_no_subscription_windows() -> None:
    fields = [*Windows.model_fields, *Fees.model_fields, *JurisdictionRule.model_fields]
    fields += list(PolicyConfig.model_fields)
    assert not [name for name in fields if WORD in name]
    for name in PRESET_NAMES:
        text = resources.files("policy.presets").joinpath(f"{name}.toml").read_text("utf-8")
        assert not [key for key in _keys(tomllib.loads(text)) if WORD in key.lower()]
