"""The session's spend, broken down by kind of call and by model (what /cost shows)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from agent.protocol import JobUpdate, LLMCall, Usage


@dataclass
class Bucket:
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    unknown_calls: int = 0

    def add(self, call: LLMCall) -> None:
        self.add_usage(call.usage, call.cost_usd)

    def add_usage(self, usage: Usage, cost_usd: float | None) -> None:
        """One model call: its tokens, and its cost (None: unknown, counted apart)."""
        self.calls += 1
        self.usage = self.usage + usage
        if cost_usd is None:
            self.unknown_calls += 1
        else:
            self.cost_usd += cost_usd

    def money(self) -> str:
        text = f"${self.cost_usd:.4f}"
        return text + (f" + {self.unknown_calls} at unknown price" if self.unknown_calls else "")


@dataclass
class CostLedger:
    total: Bucket = field(default_factory=Bucket)
    by_kind: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    by_model: dict[str, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    failed_calls: int = 0
    #: the latest word on each job: id -> (flavor, status, cost so far or final, None = unknown)
    jobs: dict[str, tuple[str, str, float | None]] = field(default_factory=dict)

    def job(self, update: JobUpdate) -> None:
        self.jobs[update.job_id] = (update.flavor, update.status, update.cost_usd)

    @property
    def compute_cost_usd(self) -> float:
        return round(sum(cost for _, _, cost in self.jobs.values() if cost is not None), 6)

    @property
    def unknown_compute_jobs(self) -> int:
        return sum(1 for _, _, cost in self.jobs.values() if cost is None)

    def add(self, call: LLMCall) -> None:
        self.total.add(call)
        self.by_kind[call.kind].add(call)
        self.by_model[call.model].add(call)
        if call.error:
            self.failed_calls += 1

    def report(self) -> str:
        t = self.total
        lines = [
            f"Session: {t.money()} over {t.calls} model call(s)"
            + (f" ({self.failed_calls} failed)" if self.failed_calls else ""),
            f"Tokens: {t.usage.prompt_tokens:,} in ({t.usage.cache_read_tokens:,} cache read, "
            f"{t.usage.cache_write_tokens:,} cache write), {t.usage.completion_tokens:,} out",
        ]
        if self.by_kind:
            lines.append("By kind:")
            lines += [f"  {k:<12} {b.calls:>4} calls  {b.money()}" for k, b in sorted(self.by_kind.items())]
        if self.by_model:
            lines.append("By model:")
            lines += [f"  {m:<40} {b.calls:>4} calls  {b.money()}" for m, b in sorted(self.by_model.items())]
        if not self.jobs:
            lines.append("Compute (jobs): $0.00 - none launched")
            return "\n".join(lines)
        unknown = self.unknown_compute_jobs
        lines.append(f"Compute (jobs): ${self.compute_cost_usd:.4f}"
                     + (f" + {unknown} at unknown price" if unknown else "") + " (running jobs: cost so far)")
        for job_id, (flavor, status, cost) in self.jobs.items():
            money = "unknown price" if cost is None else f"${cost:.4f}"
            lines.append(f"  {job_id:<24} {flavor:<12} {status.lower():<10} {money}")
        return "\n".join(lines)
