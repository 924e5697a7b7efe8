"""Hourly prices of job hardware, and cost estimates.

Two sources: an offline table (the reference's prices where it names one, public list
prices for the rest) and the Hub's own hardware list, fetched by ``refresh_prices`` and
cached as JSON under the data dir. While the cache is fresh the Hub's prices win (merged
over the table, which still covers flavors the Hub did not list); once it is stale, or
when a refresh fails, estimates quietly use the table - a price lookup never blocks a job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

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

CACHE_TTL_S = 6 * 3600
FETCH_TIMEOUT_S = 3.0
#: after a failed refresh, do not ask the Hub again for this long (each try costs a timeout)
RETRY_AFTER_FAILURE_S = 600.0
CACHE_FILE = Path("cache") / "jobs-hardware-prices.json"
_UNITS_PER_HOUR = {"second": 3600.0, "minute": 60.0, "hour": 1.0}


def is_gpu(flavor: str) -> bool:
    return flavor not in CPU_FLAVORS


class PriceTable(Mapping[str, float]):
    """Hourly USD per flavor: the Hub's prices while fresh, over the offline table.

    A read-only mapping, so it goes wherever a ``dict[str, float]`` of prices did
    (``hourly_price(flavor, table)``, ``JobMonitor(prices=table)``).
    """

    def __init__(self, cache_path: Path | None = None, *, ttl_s: float = CACHE_TTL_S,
                 offline: Mapping[str, float] | None = None, clock: Callable[[], float] = time.time):
        self.cache_path = cache_path
        self.ttl_s = ttl_s
        self.offline = dict(HOURLY_USD if offline is None else offline)
        self.clock = clock
        self.live: dict[str, float] = {}
        self.fetched_at: float | None = None
        self.last_failure_at: float | None = None  # this process only: a new session may try again
        self.reload()

    # ------------------------------------------------------------------ state

    @property
    def fresh(self) -> bool:
        if self.fetched_at is None:
            return False
        age = self.clock() - self.fetched_at
        return -300 < age < self.ttl_s  # a timestamp from the future (clock skew) counts as stale beyond 5 min

    @property
    def source(self) -> str:
        """Where prices come from right now: "hub" or "table"."""
        return "hub" if self.fresh and self.live else "table"

    def needs_refresh(self) -> bool:
        if self.fresh:
            return False
        failed = self.last_failure_at
        return failed is None or self.clock() - failed >= RETRY_AFTER_FAILURE_S

    def _current(self) -> dict[str, float]:
        return {**self.offline, **self.live} if self.fresh else self.offline

    def __getitem__(self, flavor: str) -> float:
        return self._current()[flavor]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    # ------------------------------------------------------------------ cache

    def reload(self) -> None:
        """Read the cache file (another session may have refreshed it); a bad file is ignored."""
        path = self.cache_path
        if path is None or not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fetched_at = float(data["fetched_at"])
            prices = {str(name): float(price) for name, price in data["hourly_usd"].items() if float(price) >= 0}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the unreadable job price cache %s: %s", path, exc)
            return
        self.live, self.fetched_at = prices, fetched_at

    def update(self, hourly: Mapping[str, float], fetched_at: float | None = None) -> None:
        """Take fresh prices (hourly USD) and write them to the cache file."""
        self.live = dict(hourly)
        self.fetched_at = self.clock() if fetched_at is None else fetched_at
        self.last_failure_at = None
        if self.cache_path is None:
            return
        payload = {"fetched_at": self.fetched_at, "unit": "USD per hour", "hourly_usd": self.live}
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_name(f"{self.cache_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(payload, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.cache_path)  # atomic: a concurrent reader never sees half a file
        except OSError as exc:
            log.warning("could not write the job price cache %s: %s", self.cache_path, exc)


_TABLES: dict[Path, PriceTable] = {}


def default_prices() -> PriceTable:
    """The price table of the current data dir (cached per dir, so tests with their own
    ``MLINTERN_HOME`` never share prices)."""
    from agent.config import data_dir

    path = data_dir() / CACHE_FILE
    table = _TABLES.get(path)
    if table is None:
        table = _TABLES[path] = PriceTable(path)
    return table


# ---------------------------------------------------------------------- the Hub's list


def parse_hardware(items: Any) -> dict[str, float]:
    """Hourly USD per flavor from the Hub's ``/api/jobs/hardware`` answer (priced per unit,
    usually per minute). Entries it cannot read are skipped."""
    prices: dict[str, float] = {}
    if not isinstance(items, list):
        raise ValueError(f"expected a list of hardware, got {type(items).__name__}")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        per_hour = _UNITS_PER_HOUR.get(str(item.get("unitLabel", "")).lower())
        micro, usd = item.get("unitCostMicroUSD"), item.get("unitCostUSD")
        # the integer micro-dollar figure is exact; the float one is derived from it
        unit_cost = micro / 1_000_000 if isinstance(micro, (int, float)) else usd
        if per_hour is None or not isinstance(unit_cost, (int, float)) or unit_cost < 0:
            continue
        prices[item["name"]] = round(unit_cost * per_hour, 6)
    return prices


def fetch_hub_prices(endpoint: str | None = None, token: str | None = None,
                     timeout_s: float = FETCH_TIMEOUT_S) -> dict[str, float]:
    """GET the Hub's hardware list (blocking). ``HfApi.list_jobs_hardware`` takes no
    timeout, and a hung request in a worker thread would hold up interpreter exit, so
    this uses the client's session directly with one."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    base = (endpoint or constants.ENDPOINT).rstrip("/")
    response = get_session().get(f"{base}/api/jobs/hardware", headers=build_hf_headers(token=token),
                                 timeout=timeout_s)
    hf_raise_for_status(response)
    return parse_hardware(response.json())


async def refresh_prices(endpoint: str | None = None, token: str | None = None, *, table: PriceTable | None = None,
                         force: bool = False, timeout_s: float = FETCH_TIMEOUT_S) -> PriceTable:
    """Bring ``table`` (default: the data dir's) up to date from the Hub unless it is fresh.

    Never raises: on any failure the table keeps answering from what it has (the offline
    prices once the cache is stale), and the failure is logged and remembered so the next
    attempt waits ``RETRY_AFTER_FAILURE_S``.
    """
    table = table if table is not None else default_prices()
    if not force:
        table.reload()
        if table.fresh:
            return table
    try:
        hourly = await asyncio.to_thread(fetch_hub_prices, endpoint, token, timeout_s)
        if not hourly:
            raise ValueError("the Hub listed no priced hardware")
    except Exception as exc:
        table.last_failure_at = table.clock()
        reason = (str(exc).splitlines() or [""])[0][:200]
        log.warning("could not refresh job hardware prices from the Hub (%s: %s); estimates use the %s prices",
                    type(exc).__name__, reason, "cached" if table.fresh else "offline")
        return table
    table.update(hourly)
    return table


# ---------------------------------------------------------------------- estimates

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)


def parse_timeout(value: str | int | float | None, default_s: int = 1800) -> int | None:
    """'30m', '2h', '1.5h', '90s', 3600 -> seconds; None when it cannot be parsed."""
    if value is None or value == "":
        return default_s
    if isinstance(value, (int, float)):
        return int(value) if value >= 1 else None
    match = _DURATION.match(str(value))
    if not match:
        return None
    number, unit = float(match.group(1)), (match.group(2) or "s").lower()
    seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    # under a second is no timeout a job can keep (and would estimate as $0): not understood
    return int(seconds) if seconds >= 1 else None


def hourly_price(flavor: str, prices: Mapping[str, float] | None = None) -> float | None:
    """USD per hour of ``flavor``: from ``prices`` when given, else the data dir's table
    (the Hub's prices when fresh, the offline ones otherwise)."""
    table = prices or default_prices()
    return table.get(flavor)


def estimate_cost(flavor: str, timeout_s: int | None, prices: Mapping[str, float] | None = None) -> float | None:
    """Worst case: the price per hour times the timeout. None when it cannot be estimated."""
    price = hourly_price(flavor, prices)
    if price is None or timeout_s is None:
        return None
    return round(price * timeout_s / 3600, 4)
