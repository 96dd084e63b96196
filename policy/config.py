"""Policy presets and the policy file: the numbers behind every rule, validated by pydantic.

A preset is a TOML file in `policy/presets/`. A policy file given in configuration overrides
any value, keyed by preset name (`[spectrum.fees] creator_fee_bps = 1000`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from policy.errors import PolicyFileError

PresetName = Literal["spectrum", "cadcrowd"]
PRESET_NAMES: tuple[PresetName, ...] = ("spectrum", "cadcrowd")

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
Days = Field(ge=0, le=3650)


class Fees(BaseModel):
    model_config = _STRICT
    client_fee_bps: int = Field(ge=0, le=10_000)
    creator_fee_bps: int = Field(ge=0, le=10_000)
    small_refund_threshold_minor: int = Field(ge=0)


class Windows(BaseModel):
    model_config = _STRICT
    release_dispute_days: int = Days
    dispute_sla_days: int = Days
    addon_refund_hours: int = Field(ge=0, le=24 * 365)
    review_window_days: int = Days
    cooling_off_days: int = Days
    expert_approval_days: int = Days
    support_approval_days: int = Days
    hourly_dispute_days_after_period: int = Days
    hourly_dispute_intake_days: int = Days
    withdrawal_min_business_days: int = Field(ge=0, le=60)
    withdrawal_max_business_days: int = Field(ge=0, le=60)

    @model_validator(mode="after")
    def _payout_range_in_order(self) -> Windows:
        if self.withdrawal_min_business_days > self.withdrawal_max_business_days:
            raise ValueError("withdrawal_min_business_days exceeds withdrawal_max_business_days")
        return self


class JurisdictionRule(BaseModel):
    """Windows that consumer law extends for one jurisdiction (SC-13); unset means unchanged."""

    model_config = _STRICT
    cooling_off_days: int | None = Field(default=None, ge=0, le=3650)
    release_dispute_days: int | None = Field(default=None, ge=0, le=3650)
    expert_approval_days: int | None = Field(default=None, ge=0, le=3650)
    support_approval_days: int | None = Field(default=None, ge=0, le=3650)
    hourly_dispute_days_after_period: int | None = Field(default=None, ge=0, le=3650)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _read_holiday(value: Any) -> Any:
    # TOML has date literals (2026-12-25) and a quoted "2026-12-25" is read as one too; anything
    # else, a date-time included, is left to strict validation, which refuses it: a holiday is
    # a whole UTC day.
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return date.fromisoformat(value)
    return value


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


Holiday = Annotated[date, BeforeValidator(_read_holiday)]


class Calendar(BaseModel):
    """Days that are not business days (CC-5 payouts) besides Saturdays and Sundays."""

    model_config = _STRICT
    holidays: Annotated[tuple[Holiday, ...], BeforeValidator(_as_tuple)] = ()

    @field_validator("holidays")
    @classmethod
    def _listed_once(cls, holidays: tuple[date, ...]) -> tuple[date, ...]:
        repeated = sorted({day for day in holidays if holidays.count(day) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(map(str, repeated))}")
        return tuple(sorted(holidays))


class Reviews(BaseModel):
    model_config = _STRICT
    hide_below_minor: int = Field(ge=0)


class PolicyConfig(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1)
    family: PresetName
    fees: Fees
    windows: Windows
    reviews: Reviews
    calendar: Calendar = Field(default_factory=Calendar)
    jurisdictions: dict[str, JurisdictionRule] = Field(default_factory=dict)

    def windows_for(self, jurisdiction: str | None) -> Windows:
        """The windows for a client in `jurisdiction`: a table row only ever extends (SC-13)."""
        rule = self.jurisdictions.get(jurisdiction) if jurisdiction else None
        if rule is None:
            return self.windows
        extended = {
            field: max(getattr(self.windows, field), value)
            for field, value in rule.model_dump(exclude_none=True).items()
        }
        return self.windows.model_copy(update=extended)


class PolicySet:
    """The presets in force, by name, after the policy file's overrides."""

    def __init__(self, policies: Mapping[str, PolicyConfig], default: str) -> None:
        if default not in policies:
            raise PolicyFileError(f"default_policy: unknown preset {default!r}")
        self._policies = dict(policies)
        self.default = default

    def get(self, name: str | None) -> PolicyConfig:
        return self._policies[name or self.default]

    def names(self) -> list[str]:
        return sorted(self._policies)


def _preset_data(name: str) -> dict[str, Any]:
    text = resources.files("policy.presets").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validate(name: str, data: dict[str, Any]) -> PolicyConfig:
    try:
        return PolicyConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{name}.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            for item in exc.errors(include_url=False)
        )
        raise PolicyFileError(problems) from None


def load_policies(policy_file: Path | None = None, default: str = "spectrum") -> PolicySet:
    """The shipped presets, with the values of `policy_file` laid over them."""
    overrides: dict[str, Any] = {}
    if policy_file is not None:
        try:
            overrides = tomllib.loads(policy_file.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyFileError(f"{policy_file}: {exc}") from None
        unknown = sorted(set(overrides) - set(PRESET_NAMES))
        if unknown:
            raise PolicyFileError(f"{policy_file}: unknown preset section(s) {unknown}")
    policies: dict[str, PolicyConfig] = {
        name: _validate(name, _merge(_preset_data(name), overrides.get(name, {})))
        for name in PRESET_NAMES
    }
    return PolicySet(policies, default)
