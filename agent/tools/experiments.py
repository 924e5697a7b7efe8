"""``experiments``: the agent reads the experiment board (this project's runs across sessions)
instead of re-reading logs: list them, compare some side by side, or find the best by a metric."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Literal

from pydantic import Field

from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult


class ExperimentsParams(ToolParams):
    operation: Literal["list", "compare", "best"] = Field(..., description=(
        "list: every run with status, key parameters and metrics; compare: the runs named in job_ids side by "
        "side (differing parameters, every metric); best: the run with the best value of metric"))
    job_ids: list[str] | None = Field(None, description="compare: two or more job ids (prefixes work)")
    metric: str | None = Field(None, description="best: e.g. best_eval_loss, final_loss, eval_accuracy")
    lowest: bool | None = Field(None, description="best: lower is better (default: true for losses, false otherwise)")


class ExperimentsTool(Tool):
    name = "experiments"
    description = ("The experiment board: every training job launched in this project (all sessions) as a run "
                   "with its hardware, model, dataset, hyper-parameters, metrics parsed from its log, duration, "
                   "cost and output repo. Use it to compare runs or pick the best instead of re-reading logs.")
    Params = ExperimentsParams

    def __init__(self, runs: Callable[[], Awaitable[list[Any]]]):
        self.runs = runs

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        from agent.experiments import best, compare

        runs = await self.runs()
        if not runs:
            return ToolResult("No runs yet in this project: launch a job with hf_jobs and it appears here.")
        if params.operation == "list":
            lines = []
            for r in runs:
                metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items()) if k != "steps")
                keys = ", ".join(f"{k}={v}" for k, v in list(r.hyperparameters.items())[:8])
                cost = f"${r.cost_usd:.2f}" if r.cost_usd is not None else "cost ?"
                lines.append(f"- {r.job_id} [{r.status}] {r.flavor} {cost} model={r.model_id or '?'} "
                             f"data={r.dataset_id or '?'} | {keys or 'no parameters seen'} | {metrics or 'no metrics yet'}")
            return ToolResult(f"{len(runs)} run(s):\n" + "\n".join(lines))
        if params.operation == "compare":
            wanted = params.job_ids or []
            chosen = [r for r in runs if any(r.job_id.startswith(w) for w in wanted)]
            if len(chosen) < 2:
                known = ", ".join(r.job_id for r in runs[-10:])
                return ToolResult(f"ERROR: compare needs two or more known job ids (found {len(chosen)}); "
                                  f"recent runs: {known}.", success=False)
            return ToolResult(compare(chosen))
        if not params.metric:
            return ToolResult("ERROR: best needs a metric, e.g. best_eval_loss.", success=False)
        winner = best(runs, params.metric, params.lowest)
        if winner is None:
            seen = sorted({k for r in runs for k in r.metrics})
            return ToolResult(f"ERROR: no run has {params.metric}; metrics seen: {', '.join(seen) or 'none'}.",
                              success=False)
        return ToolResult(f"Best by {params.metric}: {winner.job_id} ({winner.metrics[params.metric]:.4g})\n\n"
                          + compare([winner]))
