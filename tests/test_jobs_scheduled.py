"""hf_jobs on the HF backend against the Hub emulator: scheduled jobs, namespaces, the token
as a secret only, script URLs, billing refusals, and hardware prices from the Hub."""

from __future__ import annotations

import json
import logging
import time

import pytest

from agent.jobs import pricing
from agent.jobs.hf import HFJobsBackend
from agent.jobs.local import LocalBackend
from agent.jobs.monitor import JobMonitor
from agent.jobs.pricing import PriceTable, default_prices, estimate_cost, hourly_price, refresh_prices
from agent.jobs.service import JobService
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.jobs import HfJobsParams, HfJobsTool

SECRET = "hf_SuperSecretToken123"


@pytest.fixture
async def jobs_ctx(hub, tmp_path):
    """A tool context whose jobs run on HF Jobs (the emulator) as user ada (org ml-team)."""
    contexts = []

    def make(token: str = "hf_test", backend=None) -> ToolContext:
        backend = backend or HFJobsBackend(token, endpoint=hub.endpoint)
        monitor = JobMonitor(lambda event: None, tmp_path / "jobs", poll_s=0.2, reconnect_s=0.1)
        jobs = JobService(backend=backend, monitor=monitor, turn=lambda: 1, first_lines_wait_s=0.3)
        ctx = ToolContext(session_id="s", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(),
                          jobs=jobs)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        await ctx.jobs.monitor.close()


async def call(ctx: ToolContext, **kw):
    return await HfJobsTool().run(HfJobsParams(**kw), ctx)


def submissions(hub, prefix: str = "/api/") -> list:
    return [r for r in hub.requests if r.method == "POST" and r.path.startswith(prefix)]


# ---------------------------------------------------------------------- scheduled jobs


async def test_every_scheduled_operation_through_the_tool(hub, jobs_ctx):
    ctx = jobs_ctx()
    created = await call(ctx, operation="scheduled run", script="print('nightly eval')\n", schedule="@daily",
                         dependencies=["trl"], hardware_flavor="t4-small", timeout="1h")
    assert created.success, created.output
    sid = hub.scheduled_job(created.output.split()[2])["id"]
    assert f"Scheduled job {sid} created under ada: runs @daily on t4-small; each run: " in created.output
    assert "$0.60/h" in created.output and "at most $0.60 for the 1h timeout" in created.output
    assert "Suspended: no. Next run: " in created.output and " 00:00 UTC (in " in created.output
    assert "Last job: none yet" in created.output and "uv run --with trl /tmp/mlintern_job.py" in created.output
    body = submissions(hub, "/api/scheduled-jobs/")[0].body
    assert body["schedule"] == "@daily" and body["jobSpec"]["flavor"] == "t4-small"
    assert body["jobSpec"]["timeoutSeconds"] == 3600 and "suspend" not in body

    listed = await call(ctx, operation="scheduled ps")
    assert listed.output.startswith("1 scheduled job(s):")
    assert sid in listed.output and "@daily" in listed.output and "active" in listed.output
    assert "last job: none yet" in listed.output

    # the Hub starts a run (as the schedule would); inspect names it and `logs` can follow it up
    from huggingface_hub import HfApi

    run = HfApi(endpoint=hub.endpoint, token="hf_test").trigger_scheduled_job(scheduled_job_id=sid, namespace="ada")
    inspected = await call(ctx, operation="scheduled inspect", scheduled_job_id=sid)
    assert f"Scheduled job {sid} under ada: @daily on t4-small." in inspected.output
    assert f"Last job: {run.id} at " in inspected.output and "Created: " in inspected.output
    assert run.id in (await call(ctx, operation="inspect", job_id=run.id)).output

    suspended = await call(ctx, operation="scheduled suspend", scheduled_job_id=sid)
    assert "suspended: no runs start until `scheduled resume`" in suspended.output
    assert "Suspended: yes. Next run: none while suspended." in suspended.output
    assert hub.scheduled_job(sid)["suspend"] is True
    assert "SUSPENDED" in (await call(ctx, operation="scheduled ps")).output

    resumed = await call(ctx, operation="scheduled resume", scheduled_job_id=sid)
    assert "resumed" in resumed.output and "Suspended: no. Next run: " in resumed.output
    assert hub.scheduled_job(sid)["suspend"] is False

    deleted = await call(ctx, operation="scheduled delete", scheduled_job_id=sid)
    assert deleted.success and f"Scheduled job {sid} deleted" in deleted.output
    assert (await call(ctx, operation="scheduled ps")).output == "No scheduled jobs."
    gone = await call(ctx, operation="scheduled inspect", scheduled_job_id=sid)
    assert not gone.success and f"No scheduled job '{sid}' under 'ada'" in gone.output


async def test_scheduled_run_checks_its_arguments_before_submitting(hub, jobs_ctx):
    ctx = jobs_ctx()
    for kw, expected in [
        ({}, "needs `schedule`"),
        ({"schedule": "every day"}, "needs `schedule`"),
        ({"schedule": "@daily", "timeout": "soon"}, "cannot read timeout"),
        ({"schedule": "@daily", "command": ["echo"]}, "exactly one of `script`"),
    ]:
        result = await call(ctx, operation="scheduled run", script="print(1)", **kw)
        assert not result.success and expected in result.output, result.output
    for op in ("scheduled inspect", "scheduled delete", "scheduled suspend", "scheduled resume"):
        result = await call(ctx, operation=op)
        assert not result.success and "needs scheduled_job_id" in result.output
    assert submissions(hub, "/api/scheduled-jobs/") == []


async def test_an_invalid_cron_is_the_hubs_sentence(hub, jobs_ctx):
    result = await call(jobs_ctx(), operation="scheduled run", script="print(1)", schedule="99 * * * *")
    assert not result.success and "Invalid schedule '99 * * * *'" in result.output
    assert "Nothing was scheduled" in result.output


async def test_402_on_scheduled_run_is_a_clear_billing_refusal(hub, jobs_ctx):
    hub.fail_next_run(402, "Insufficient credits: add a payment method to run jobs")
    result = await call(jobs_ctx(), operation="scheduled run", script="print(1)", schedule="@hourly",
                        hardware_flavor="a10g-small")
    assert not result.success
    assert "refused the job for billing" in result.output and "huggingface.co/settings/billing" in result.output
    assert "Insufficient credits" in result.output and "Nothing was scheduled." in result.output
    api_list = [r for r in hub.requests if r.method == "GET" and r.path == "/api/scheduled-jobs/ada"]
    assert api_list == [] and "No scheduled jobs" in (await call(jobs_ctx(), operation="scheduled ps")).output


async def test_scheduled_ops_on_the_local_backend_say_they_need_hf_jobs(tmp_path, jobs_ctx):
    ctx = jobs_ctx(backend=LocalBackend(tmp_path / "local", uv=False))
    for op in ("scheduled ps", "scheduled run"):
        result = await call(ctx, operation=op, script="print(1)", schedule="@daily")
        assert not result.success and "needs Hugging Face Jobs" in result.output


# ---------------------------------------------------------------------- namespaces


async def test_namespace_defaults_to_the_user_and_must_be_theirs(hub, jobs_ctx):
    ctx = jobs_ctx()
    for op in ("run", "scheduled run", "scheduled ps"):
        refused = await call(ctx, operation=op, script="print(1)", schedule="@daily", namespace="someone-else")
        assert not refused.success, op
        assert "cannot run jobs under 'someone-else'" in refused.output and "ml-team" in refused.output
    assert submissions(hub) == []  # refused before anything was sent

    org = await call(ctx, operation="scheduled run", script="print(1)", schedule="0 3 * * 1", namespace="ml-team")
    sid = org.output.split()[2]
    assert "created under ml-team" in org.output and hub.scheduled_job(sid)["owner"]["name"] == "ml-team"
    # later calls find it under the org without being told again
    assert "under ml-team" in (await call(ctx, operation="scheduled inspect", scheduled_job_id=sid)).output
    assert sid in (await call(ctx, operation="scheduled ps", namespace="ml-team")).output
    assert (await call(ctx, operation="scheduled ps")).output == "No scheduled jobs."  # ada's own list
    whoamis = [r for r in hub.requests if r.path == "/api/whoami-v2"]
    assert len(whoamis) == 1  # cached: the Hub rate-limits whoami


# ---------------------------------------------------------------------- the token


async def test_the_token_travels_only_as_a_secret_and_is_never_shown(hub, jobs_ctx, caplog):
    caplog.set_level(logging.DEBUG)
    hub.add_user(SECRET, "bob", orgs=("bob-lab",))
    ctx = jobs_ctx(token=SECRET)
    env = {"HF_TOKEN": "$HF_TOKEN", "HUGGINGFACE_HUB_TOKEN": SECRET, "PUSH_AUTH": f"Bearer {SECRET}", "MODE": "fast"}
    outputs = [
        await call(ctx, operation="run", script="print(1)", env=env),
        await call(ctx, operation="scheduled run", script="print(1)", schedule="@daily", env=env),
    ]
    hub.fail_next_run(402, f"No credits for token {SECRET}")  # a Hub error that echoes it back
    outputs.append(await call(ctx, operation="run", script="print(1)", hardware_flavor="t4-small"))
    outputs.append(await call(ctx, operation="scheduled ps"))
    job_id = outputs[0].output.split()[1]
    outputs += [await call(ctx, operation=op, job_id=job_id) for op in ("inspect", "logs")]
    assert all(o.success for o in outputs[:2] + outputs[3:]) and not outputs[2].success
    assert "***" in outputs[2].output

    posted = submissions(hub, "/api/")
    specs = [r.body if r.path.startswith("/api/jobs/") else r.body["jobSpec"] for r in posted]
    assert len(specs) == 3  # run, scheduled run, the refused run
    for spec in specs[:2]:
        assert spec["environment"] == {"MODE": "fast"}
        assert spec["secrets"] == {"HF_TOKEN": SECRET, "PUSH_AUTH": f"Bearer {SECRET}"}
    assert specs[2]["environment"] == {} and specs[2]["secrets"] == {"HF_TOKEN": SECRET}
    for spec in specs:
        assert SECRET not in json.dumps({k: v for k, v in spec.items() if k != "secrets"})
    for text in [o.output for o in outputs] + [r.getMessage() for r in caplog.records]:
        assert SECRET not in text
    assert SECRET not in json.dumps(hub.job(job_id))  # nor in what the Hub shows back


# ---------------------------------------------------------------------- script URLs


async def test_a_script_url_runs_with_uv_on_hf_and_is_refused_locally(hub, jobs_ctx, tmp_path):
    url = "https://raw.example.org/recipes/sft.py"
    result = await call(jobs_ctx(), operation="run", script=url, script_args=["--epochs", "1"], dependencies=["trl"])
    assert result.success, result.output
    spec = hub.job_spec(result.output.split()[1])
    assert spec["dockerImage"] == "ghcr.io/astral-sh/uv:python3.12-bookworm"
    assert spec["command"] == ["uv", "run", "--with", "trl", url, "--epochs", "1"]

    scheduled = await call(jobs_ctx(), operation="scheduled run", script=url, schedule="@weekly")
    assert f"Each run executes: uv run {url}" in scheduled.output

    local = jobs_ctx(backend=LocalBackend(tmp_path / "local", uv=False))
    refused = await call(local, operation="run", script=url)
    assert not refused.success and "script URL needs Hugging Face Jobs" in refused.output
    assert "NOT executed" in refused.output and local.jobs.monitor.jobs == {}


# ---------------------------------------------------------------------- prices


def test_hub_hardware_is_read_as_hourly_prices():
    items = [
        {"name": "cpu-basic", "unitCostMicroUSD": 167, "unitCostUSD": 0.000167, "unitLabel": "minute"},
        {"name": "big", "unitCostUSD": 10.0, "unitLabel": "hour"},
        {"name": "odd", "unitCostUSD": 1.0, "unitLabel": "fortnight"},
        {"unitCostUSD": 1.0, "unitLabel": "minute"},
        "junk",
    ]
    assert pricing.parse_hardware(items) == {"cpu-basic": 0.01002, "big": 10.0}
    with pytest.raises(ValueError):
        pricing.parse_hardware({"error": "nope"})


async def test_refresh_caches_the_hubs_prices_and_estimates_use_them_while_fresh(hub, mlintern_home):
    table = default_prices()
    assert table.source == "table" and hourly_price("cpu-basic") == 0.05 and table.needs_refresh()
    await refresh_prices(hub.endpoint, "hf_test")
    assert table.source == "hub" and not table.needs_refresh()
    # the Hub's list wins (cpu-basic $0.01/h, a10g-small $1.25/h) and the table fills the gaps
    assert hourly_price("cpu-basic") == pytest.approx(0.01, abs=1e-4)
    assert estimate_cost("a10g-small", 7200) == pytest.approx(2.5, abs=1e-3)
    assert hourly_price("a100x8") == 32.0 and hourly_price("quantum") is None

    cache = mlintern_home / "cache" / "jobs-hardware-prices.json"
    data = json.loads(cache.read_text())
    assert abs(data["fetched_at"] - time.time()) < 60 and data["hourly_usd"]["a10g-small"] == pytest.approx(1.25, abs=1e-3)
    hardware_calls = len([r for r in hub.requests if r.path == "/api/jobs/hardware"])
    await refresh_prices(hub.endpoint, "hf_test")  # fresh: no new request
    assert len([r for r in hub.requests if r.path == "/api/jobs/hardware"]) == hardware_calls

    # another session reads the cache; after the TTL it falls back to the offline table
    later = {"now": time.time()}
    reader = PriceTable(cache, clock=lambda: later["now"])
    assert reader.source == "hub" and reader["cpu-basic"] == pytest.approx(0.01, abs=1e-4)
    later["now"] += pricing.CACHE_TTL_S + 1
    assert reader.source == "table" and reader["cpu-basic"] == 0.05 and reader.needs_refresh()


async def test_a_failed_refresh_falls_back_to_the_table_and_is_logged(hub, caplog, mlintern_home):
    hub.fail_hardware_list(times=1)
    with caplog.at_level(logging.WARNING, logger="agent.jobs.pricing"):
        table = await refresh_prices(hub.endpoint, "hf_test")
    assert table.source == "table" and hourly_price("t4-small") == 0.60
    assert any("could not refresh job hardware prices" in r.getMessage() for r in caplog.records)
    assert not (mlintern_home / "cache" / "jobs-hardware-prices.json").exists()
    assert not table.needs_refresh()  # no retry storm: the next try waits RETRY_AFTER_FAILURE_S
    (mlintern_home / "cache").mkdir()
    (mlintern_home / "cache" / "jobs-hardware-prices.json").write_text("{not json")
    assert PriceTable(mlintern_home / "cache" / "jobs-hardware-prices.json").source == "table"
    table = await refresh_prices(hub.endpoint, "hf_test", force=True)
    assert table.source == "hub"


async def test_run_refreshes_prices_and_the_monitor_bills_with_them(hub, jobs_ctx):
    hub.script_job(lines=["step 1"], line_delay=0.05)
    ctx = jobs_ctx()
    result = await call(ctx, operation="run", script="print(1)", hardware_flavor="a10g-small", timeout="2h")
    assert "$1.25/h per the Hub's price list, at most $2.50 for the 2h timeout" in result.output
    watched = ctx.jobs.monitor.jobs[result.output.split()[1]]
    watched.info.started_at, watched.info.finished_at = 0.0, 1800.0
    # half an hour at the Hub's price (per-minute micro-dollars on the wire, so not exactly 1.25/h)
    assert ctx.jobs.monitor.cost_so_far(watched) == pytest.approx(0.625, abs=1e-3)


async def test_run_on_hf_still_works_when_the_price_route_fails(hub, jobs_ctx):
    hub.fail_hardware_list(times=1, status=503)
    result = await call(jobs_ctx(), operation="run", script="print(1)", hardware_flavor="a10g-small", timeout="1h")
    assert result.success and "$1.00/h per the offline price list" in result.output


async def test_a_whole_session_on_hf_jobs_never_shows_the_token(hub, llm_server, monkeypatch, tmp_path, mlintern_home):
    from agent.protocol import Shutdown, UserInput
    from tests.engine_support import collect_until, make_session, priced_config, of_type
    from tests.fakes import Call, Text, ToolCalls

    hub.add_user(SECRET, "bob")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.script_job(lines=["training", "done"], line_delay=0.05)
    llm_server.script(ToolCalls([
        Call("r1", "hf_jobs", json.dumps({"operation": "run", "script": "print(1)", "env": {"HF_TOKEN": "$HF_TOKEN"}})),
    ]), Text("launched"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", config=priced_config(), jobs_backend="hf")
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="run it"))
    events = await collect_until(sub)
    out = of_type(events, "tool_output")[0]
    assert out.success and "hf backend" in out.output
    job_id = out.output.split()[1]
    watched = s.jobs.monitor.jobs[job_id]
    await watched.task
    s.submit(Shutdown())
    assert hub.job_spec(job_id)["environment"] == {} and hub.job_spec(job_id)["secrets"] == {"HF_TOKEN": SECRET}
    assert all(SECRET not in e.model_dump_json() for e in events)
    assert SECRET not in watched.log_path.read_text()
    for path in mlintern_home.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
