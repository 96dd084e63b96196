"""The policy's `[calendar]` section: holidays that are not business days (CC-5)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from policy.config import PRESET_NAMES, load_policies
from policy.errors import PolicyFileError


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cc5_the_presets_list_no_holidays() -> None:
    policies = load_policies()
    for name in PRESET_NAMES:
        assert policies.get(name).calendar.holidays == ()


def test_cc5_a_policy_file_lists_holidays_as_toml_dates_or_iso_strings(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        '[cadcrowd.calendar]\nholidays = [2026-12-28, "2026-12-25"]\n',
    )
    policies = load_policies(path)
    # Kept in calendar order; the other preset is untouched.
    assert policies.get("cadcrowd").calendar.holidays == (date(2026, 12, 25), date(2026, 12, 28))
    assert policies.get("spectrum").calendar.holidays == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[2026-12-25T00:00:00Z]", "holidays.0"),
        ('["2026-02-30"]', "out of range"),
        ('["25/12/2026"]', "holidays.0"),
        ('["20261225"]', "holidays.0"),
        ("[20261225]", "holidays.0"),
        ("[2026-12-25, 2026-12-25]", "listed more than once: 2026-12-25"),
        ('"2026-12-25"', "holidays"),
    ],
)
def test_cc5_a_holiday_that_is_not_one_calendar_day_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    path = write_policy(tmp_path, f"[spectrum.calendar]\nholidays = {value}\n")
    with pytest.raises(PolicyFileError, match=message) as caught:
        load_policies(path)
    assert "spectrum.calendar.holidays" in str(caught.value)


def test_an_unknown_calendar_key_is_refused(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "[spectrum.calendar]\nweekend = [6, 7]\n")
    with pytest.raises(PolicyFileError, match=r"spectrum\.calendar\.weekend"):
        load_policies(path)


def test_cc5_a_payout_range_must_run_forwards(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        "[cadcrowd.windows]\nwithdrawal_min_business_days = 6\n",
    )
    with pytest.raises(PolicyFileError, match="withdrawal_min_business_days exceeds"):
        load_policies(path)
