"""The session's cost ledger: model calls by kind and model, jobs by id (what /cost shows)."""

from __future__ import annotations

from agent.costs import CostLedger
from agent.protocol import JobUpdate, LLMCall, Usage


def test_jobs_are_listed_with_their_latest_cost_and_unknown_prices_are_flagged():
    ledger = CostLedger()
    ledger.add(LLMCall(model="m", kind="main", latency_ms=1, usage=Usage(prompt_tokens=10, completion_tokens=5),
                       cost_usd=0.01))
    assert "Compute (jobs): $0.00 - none launched" in ledger.report()
    ledger.job(JobUpdate(job_id="a1", status="RUNNING", flavor="a10g-small", cost_usd=0.10))
    ledger.job(JobUpdate(job_id="a1", status="COMPLETED", flavor="a10g-small", cost_usd=0.25))
    ledger.job(JobUpdate(job_id="b2", status="RUNNING", flavor="mystery-gpu", cost_usd=None))
    assert ledger.compute_cost_usd == 0.25 and ledger.unknown_compute_jobs == 1
    report = ledger.report()
    assert "Compute (jobs): $0.2500 + 1 at unknown price" in report
    assert any(line.split() == ["a1", "a10g-small", "completed", "$0.2500"] for line in report.splitlines())
    assert any(line.split()[:3] == ["b2", "mystery-gpu", "running"] and "unknown price" in line
               for line in report.splitlines())


def test_a_budget_with_unpriced_spend_is_shown_as_an_upper_bound():
    """Spend without a known price is never $0: what is left of a YOLO cap is then "at
    most" the figure, in the status badge, the receipt and /cost."""
    from agent.protocol import Receipt
    from widgets.receipt import cost_report, receipt_rows
    from widgets.status import StatusInfo, mode_badge

    exact = StatusInfo(mode="yolo", yolo_cap_usd=5.0, budget_left_usd=4.2)
    assert "$4.20 left" in str(mode_badge(exact)) and "≤" not in str(mode_badge(exact))
    bound = StatusInfo(mode="yolo", yolo_cap_usd=5.0, budget_left_usd=4.2, budget_exact=False)
    assert "≤$4.20 left" in str(mode_badge(bound))

    rows = dict(receipt_rows(Receipt(budget_left_usd=4.2, budget_exact=False, unknown_cost_calls=1, llm_calls=1)))
    assert rows["budget"] == "at most $4.20 left of the YOLO cap (unpriced spend)"
    assert dict(receipt_rows(Receipt(budget_left_usd=4.2)))["budget"] == "$4.20 left of the YOLO cap"

    ledger = CostLedger()
    ledger.add(LLMCall(model="m", kind="main", latency_ms=1, usage=Usage(prompt_tokens=10), cost_usd=None))
    report = str(cost_report(ledger, mode="yolo", cap_usd=5.0, budget_left_usd=5.0, budget_exact=False))
    assert "at most $5.00 left of the $5.00 cap" in report
