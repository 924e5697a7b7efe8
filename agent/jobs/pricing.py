"""Hourly prices of job hardware, and cost estimates.

Offline defaults: the reference's table where it gives a price, public list prices for the
rest. ``update_from_hub`` replaces them with the Hub's per-minute prices when online.
"""

from __future__ import annotations

import re

HOURLY_USD: dict[str, float] = {
    "cpu-basic": 0.05,
    "cpu-upgrade": 0.10,
    "t4-small": 0.60,
    "t4-medium": 0.90,
    "l4x1": 0.80,
    "l4x4": 3.80,
    "a10g-small": 1.00,
    "a10g-large": 2.00,
    "a10g-largex2": 4.00,
    "a10g-largex4": 8.00,
    "a100-large": 4.00,
    "a100x4": 16.00,
    "a100x8": 32.00,
    "l40sx1": 1.80,
    "l40sx4": 8.30,
    "l40sx8": 23.50,
    "h100": 4.50,
    "h100x8": 36.00,
    "h200": 10.00,
}
CPU_FLAVORS = frozenset({"cpu-basic", "cpu-upgrade"})


def is_gpu(flavor: str) -> bool:
    return flavor not in CPU_FLAVORS


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)


def parse_timeout(value: str | int | float | None, default_s: int = 1800) -> int | None:
    """'30m', '2h', '1.5h', '90s', 3600 -> seconds; None when it cannot be parsed."""
    if value is None or value == "":
        return default_s
    if isinstance(value, (int, float)):
        return int(value) if value > 0 else None
    match = _DURATION.match(str(value))
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "s").lower()
    seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return int(seconds) if seconds > 0 else None


def hourly_price(flavor: str, prices: dict[str, float] | None = None) -> float | None:
    table = prices or HOURLY_USD
    return table.get(flavor)


def estimate_cost(flavor: str, timeout_s: int | None, prices: dict[str, float] | None = None) -> float | None:
    """Worst case: the price per hour times the timeout. None when it cannot be estimated."""
    price = hourly_price(flavor, prices)
    if price is None or timeout_s is None:
        return None
    return round(price * timeout_s / 3600, 4)
