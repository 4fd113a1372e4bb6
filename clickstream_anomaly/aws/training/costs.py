"""Approximate cost of the configured SageMaker instances.

APPROXIMATE: on-demand USD per instance-hour in us-east-1 for real-time inference (training uses the same
instance families at similar rates), compiled by hand from AWS's public SageMaker pricing page and
third-party summaries in 2025-2026; NOT checked against the live price list. Other regions cost more or
less; Savings Plans cost less. Use ``--price INSTANCE=USD`` to correct an entry. The AWS Pricing
Calculator is the authority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clickstream_anomaly.sagemaker_config import SageMakerConfigError, validate_instance_type

PRICE_TABLE_NOTE = "approximate us-east-1 on-demand USD/hour, not checked against the live AWS price list"
PRICES_USD_PER_HOUR: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.m4.xlarge": 0.28,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.c4.xlarge": 0.279,
    "ml.c4.2xlarge": 0.557,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
}
HOURS_PER_DAY = 24.0
DAYS_PER_MONTH = 30.0


@dataclass(frozen=True)
class CostLine:
    """One resource: what, which instance, how many, USD per hour while it exists."""

    what: str
    instance_type: str
    count: int
    usd_per_hour: float

    @property
    def usd_per_day(self) -> float:
        return self.usd_per_hour * HOURS_PER_DAY

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_day * DAYS_PER_MONTH


def price(instance_type: str, overrides: Mapping[str, float] | None = None) -> float:
    """USD per hour of one instance (override first, then the table)."""
    validate_instance_type(instance_type)
    table = {**PRICES_USD_PER_HOUR, **(overrides or {})}
    if instance_type not in table:
        raise SageMakerConfigError(
            f"no price for {instance_type} in the table; pass --price "
            f"{instance_type}=USD_PER_HOUR (known: {', '.join(sorted(table))})"
        )
    return float(table[instance_type])


def endpoint_cost(
    what: str, instance_type: str, count: int = 1, overrides: Mapping[str, float] | None = None
) -> CostLine:
    """An always-on endpoint: billed per instance-hour for as long as it exists."""
    return CostLine(what, instance_type, count, price(instance_type, overrides) * count)


def training_cost(
    instance_type: str, hours: float, count: int = 1, overrides: Mapping[str, float] | None = None
) -> float:
    """USD for one training job of ``hours`` on ``count`` instances."""
    if hours < 0:
        raise SageMakerConfigError("training hours must be non-negative")
    return price(instance_type, overrides) * count * hours


def parse_price_overrides(items: list[str] | None) -> dict[str, float]:
    """``["ml.c5.xlarge=0.2"]`` -> ``{"ml.c5.xlarge": 0.2}``."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[validate_instance_type(name.strip())] = float(value)
        except ValueError:
            raise SageMakerConfigError(f"--price takes INSTANCE=USD_PER_HOUR, got {item!r}") from None
        if not sep:
            raise SageMakerConfigError(f"--price takes INSTANCE=USD_PER_HOUR, got {item!r}")
    return out


def format_costs(lines: list[CostLine], training: Sequence[tuple[str, str, float, float]] = ()) -> str:
    """A plain-text table; ``training`` rows are ``(what, instance, hours, usd)``."""
    out = [f"{'resource':<22} {'instance':<15} {'n':>2} {'USD/hour':>9} {'USD/day':>9} {'USD/30d':>9}"]
    for line in lines:
        out.append(
            f"{line.what:<22} {line.instance_type:<15} {line.count:>2} {line.usd_per_hour:>9.3f} "
            f"{line.usd_per_day:>9.2f} {line.usd_per_month:>9.2f}"
        )
    total = sum(line.usd_per_hour for line in lines)
    out.append(
        f"{'endpoints total':<22} {'':<15} {'':>2} {total:>9.3f} {total * HOURS_PER_DAY:>9.2f} "
        f"{total * HOURS_PER_DAY * DAYS_PER_MONTH:>9.2f}"
    )
    for what, instance, hours, usd in training:
        out.append(f"{what:<22} {instance:<15} {'':>2} one job of {hours:g} h: USD {usd:.3f}")
    out.append(f"({PRICE_TABLE_NOTE})")
    return "\n".join(out)
