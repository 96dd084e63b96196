"""Amounts in minor units are written in their currency's major unit."""

from __future__ import annotations

import pytest

from workers.statement import format_minor


@pytest.mark.parametrize(
    ("amount_minor", "currency", "written"),
    [
        (52000, "USD", "520.00 USD"),
        (-46000, "EUR", "-460.00 EUR"),
        (5, "GBP", "0.05 GBP"),
        (12345, "JPY", "12,345 JPY"),
        (1234567, "KWD", "1,234.567 KWD"),
        (1500, "PTS", "1,500 PTS"),
    ],
)
def test_an_amount_is_written_with_its_currency_s_decimals(
    amount_minor: int, currency: str, written: str
) -> None:
    assert format_minor(amount_minor, currency) == written
