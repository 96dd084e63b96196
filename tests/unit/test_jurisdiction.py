"""SC-13: the jurisdiction table extends windows for consumer law, never shortens them."""

from __future__ import annotations

import pytest

from policy.config import JurisdictionRule, PolicyConfig, load_policies

EU = [
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
]
EEA_OUTSIDE_EU = ("IS", "LI", "NO")


@pytest.fixture(scope="module")
def spectrum() -> PolicyConfig:
    return load_policies().get("spectrum")


def test_sc13_client_in_de_gets_14_days_of_cooling_off(spectrum: PolicyConfig) -> None:
    assert spectrum.windows.cooling_off_days == 0
    assert spectrum.windows_for("DE").cooling_off_days == 14


def test_sc13_client_in_gb_gets_14_days_of_cooling_off(spectrum: PolicyConfig) -> None:
    assert spectrum.windows_for("GB").cooling_off_days == 14


def test_sc13_client_in_us_keeps_the_preset_windows(spectrum: PolicyConfig) -> None:
    assert spectrum.windows_for("US") == spectrum.windows
    assert spectrum.windows_for(None) == spectrum.windows


def test_sc13_other_windows_are_untouched_for_de(spectrum: PolicyConfig) -> None:
    de = spectrum.windows_for("DE")
    assert de.model_dump(exclude={"cooling_off_days"}) == spectrum.windows.model_dump(
        exclude={"cooling_off_days"}
    )


def test_sc13_table_covers_every_eu_and_eea_state_and_gb(spectrum: PolicyConfig) -> None:
    assert len(EU) == 27
    expected = {*EU, *EEA_OUTSIDE_EU, "GB"}
    assert set(spectrum.jurisdictions) == expected
    assert {spectrum.windows_for(code).cooling_off_days for code in expected} == {14}


def test_sc13_a_row_never_shortens_a_window(spectrum: PolicyConfig) -> None:
    """A row asking for less than the preset leaves the preset's window as it is."""
    shorter = spectrum.model_copy(
        update={
            "jurisdictions": {
                "XX": JurisdictionRule(release_dispute_days=10, cooling_off_days=20),
            }
        }
    )
    windows = shorter.windows_for("XX")
    assert windows.release_dispute_days == spectrum.windows.release_dispute_days == 30
    assert windows.cooling_off_days == 20


def test_sc13_cadcrowd_ships_no_jurisdiction_rows() -> None:
    cadcrowd = load_policies().get("cadcrowd")
    assert cadcrowd.windows_for("DE") == cadcrowd.windows
