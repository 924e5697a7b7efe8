"""The Hub emulator, driven only through the real huggingface_hub 2.4 client.

These tests pin both the emulator and the client behaviour that the job monitor, the
jobs tool and the sandbox will rely on, including the client's log-follow weaknesses.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import (
    BadRequestError,
    HfHubHTTPError,
    JobNotFoundError,
    LocalTokenNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import _detect_agent

from tests.fakes.hub_server import HOURLY_PRICES_USD, HubEmulator

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"


@pytest.fixture
def api(hub: HubEmulator) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token="hf_test")


def _wait_done(api: HfApi, job_id: str, namespace: str = "ada"):
    return api.wait_for_job(job_id=job_id, namespace=namespace, poll_interval=0.02, timeout=5)


# ---- identity and hardware ------------------------------------------------------------


def test_whoami_names_the_user_and_orgs_and_rejects_unknown_tokens(hub: HubEmulator, api: HfApi) -> None:
    me = api.whoami()
    assert me["name"] == "ada" and me["type"] == "user"
    assert [org["name"] for org in me["orgs"]] == ["ml-team"]
    assert hub.requests[-1].token == "hf_test"

    with pytest.raises(HfHubHTTPError, match="Invalid user token") as caught:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").whoami()
    assert caught.value.response.status_code == 401


def test_first_request_fetches_agent_harnesses_from_the_default_endpoint(
    hub: HubEmulator, api: HfApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only with telemetry on (the conftest turns it off) and only through
    # constants.ENDPOINT, not HfApi(endpoint=): this is why the fixture patches ENDPOINT.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(_detect_agent, "_registry", None)
    api.whoami()
    paths = [(r.method, r.path) for r in hub.requests]
    assert paths == [("GET", "/api/agent-harnesses"), ("GET", "/api/whoami-v2")]
    assert Path(constants.AGENT_HARNESSES_PATH).is_file()


def test_hardware_is_priced_per_minute(api: HfApi) -> None:
    flavors = {hw.name: hw for hw in api.list_jobs_hardware()}
    expected = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "a10g-small", "a10g-large",
                "a10g-largex2", "a100-large", "h100"}
    assert expected <= set(flavors)
    assert {hw.unit_label for hw in flavors.values()} == {"minute"}
    assert flavors["cpu-basic"].unit_cost_micro_usd == 167
    assert flavors["a10g-large"].unit_cost_usd * 60 == pytest.approx(HOURLY_PRICES_USD["a10g-large"], rel=1e-3)
    assert flavors["t4-small"].accelerator.model == "T4"
    assert flavors["cpu-basic"].accelerator is None


# ---- running jobs ----------------------------------------------------------------------


def test_run_job_sends_a_docker_spec_and_the_job_runs_to_completion(hub: HubEmulator, api: HfApi) -> None:
    hub.script_job(lines=["epoch 1", "epoch 2"], line_delay=0.02)
    job = api.run_job(
        image="python:3.12",
        command=["python", "-c", "print(1)"],
        env={"MODE": "fast"},
        secrets={"HF_TOKEN": "hf_secret"},
        flavor="t4-small",
        timeout="90m",
        attempts=2,
        labels={"session": "s1"},
        namespace="ada",
    )
    spec = hub.job_spec(job.id)
    assert spec == {
        "command": ["python", "-c", "print(1)"],
        "arguments": [],
        "environment": {"MODE": "fast"},
        "flavor": "t4-small",
        "secrets": {"HF_TOKEN": "hf_secret"},
        "timeoutSeconds": 5400,
        "attempts": 2,
        "labels": {"session": "s1", "name": spec["labels"]["name"]},  # the client always adds a name
        "dockerImage": "python:3.12",
    }
    assert job.status.stage == "RUNNING" and job.owner.name == "ada" and job.retry == 1
    assert job.secrets == {"HF_TOKEN": None}, "secret values must never come back"
    assert job.url == f"{hub.endpoint}/jobs/ada/{job.id}"

    done = _wait_done(api, job.id)
    assert done.status.stage == "COMPLETED" and done.finished_at is not None
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada")) == ["epoch 1", "epoch 2"]
    assert [j.id for j in api.list_jobs(namespace="ada", status="COMPLETED", labels={"session": "s1"})] == [job.id]
    assert list(api.list_jobs(namespace="ada", status="RUNNING")) == []
    assert list(api.list_jobs(namespace="ada", labels={"session": "other"})) == []


def test_run_uv_job_with_a_url_becomes_a_uv_run_command(hub: HubEmulator, api: HfApi) -> None:
    job = api.run_uv_job(
        "https://example.com/train.py",
        script_args=["--epochs", "3"],
        dependencies=["trl", "peft"],
        python="3.11",
        flavor="a10g-small",
        namespace="ml-team",
    )
    spec = hub.job_spec(job.id)
    assert spec["dockerImage"] == UV_IMAGE
    assert spec["command"] == [
        "uv", "run", "--with", "trl", "--with", "peft", "--python", "3.11",
        "https://example.com/train.py", "--epochs", "3",
    ]
    assert job.owner.type == "org" and job.initiator.name == "ada"


def test_inline_code_travels_inside_the_command(hub: HubEmulator, api: HfApi) -> None:
    code = "import sys\n" + "print('step', sys.argv)\n" * 40
    # run_uv_job treats anything that is not a file or URL as a command and checks each
    # argument with Path.is_file(), which raises on a path component over 255 bytes.
    with pytest.raises(OSError, match="File name too long"):
        api.run_uv_job("python", script_args=["-c", code], namespace="ada")
    assert not any(r.method == "POST" for r in hub.requests), "the failure is client-side"

    packed = base64.b64encode(code.encode()).decode()
    command = ["bash", "-c", f"echo {packed} | base64 -d | uv run --with numpy -"]
    job = api.run_job(image=UV_IMAGE, command=command, namespace="ada")
    sent = hub.job_spec(job.id)["command"][2]
    assert base64.b64decode(sent.split()[1]).decode() == code


def test_a_402_from_billing_is_a_plain_http_error_carrying_the_hub_message(hub: HubEmulator, api: HfApi) -> None:
    hub.fail_next_run(402, "Insufficient credits: add a payment method to run jobs")
    with pytest.raises(HfHubHTTPError) as caught:
        api.run_job(image="python:3.12", command=["true"], flavor="a100-large", namespace="ada")
    assert type(caught.value) is HfHubHTTPError
    assert caught.value.response.status_code == 402
    assert "Insufficient credits" in str(caught.value)
    assert hub.job_ids() == []
    assert api.run_job(image="python:3.12", command=["true"], namespace="ada").status.stage == "RUNNING"


def test_namespaces_outside_the_user_and_orgs_are_forbidden(api: HfApi) -> None:
    with pytest.raises(HfHubHTTPError) as caught:
        api.run_job(image="python:3.12", command=["true"], namespace="someone-else")
    assert caught.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError, match="403 Forbidden"):
        list(api.list_jobs(namespace="someone-else"))


def test_unknown_jobs_and_flavors_map_to_client_errors(api: HfApi) -> None:
    with pytest.raises(JobNotFoundError):
        api.inspect_job(job_id="000000000000000000000000", namespace="ada")
    with pytest.raises(BadRequestError, match="Invalid flavor"):
        api.run_job(image="python:3.12", command=["true"], flavor="tpu-v9", namespace="ada")


def test_list_jobs_without_namespace_ignores_the_instance_token(
    hub: HubEmulator, api: HfApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The client resolves the namespace with the module-level whoami (default endpoint,
    # no instance token): always pass namespace=.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(LocalTokenNotFoundError):
        list(api.list_jobs())
    assert hub.requests == []


# ---- logs --------------------------------------------------------------------------------


def test_follow_streams_lines_while_the_job_runs(hub: HubEmulator, api: HfApi) -> None:
    hub.script_job(lines=["one", "two", "three"], line_delay=0.15)
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")
    seen = []
    for line in api.fetch_job_logs(job_id=job.id, namespace="ada", follow=True):
        seen.append((line, hub.job(job.id)["status"]["stage"]))
    assert seen[0] == ("one", "RUNNING")
    assert [line for line, _ in seen] == ["one", "two", "three"]
    assert api.inspect_job(job_id=job.id, namespace="ada").status.stage == "COMPLETED"


def test_a_cut_follow_stream_on_a_finished_job_silently_loses_lines(hub: HubEmulator, api: HfApi) -> None:
    lines = [f"line {n}" for n in range(8)]
    hub.script_job(lines=lines, line_delay=0, drop_after=3)
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")

    # The client sees the cut, asks for the stage, finds COMPLETED and stops: no error.
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada", follow=True)) == lines[:3]
    assert hub.log_connections(job.id) == 1
    # What a monitor must do after the job ends: one non-follow fetch, reconciled by count.
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada")) == lines


def test_a_cut_follow_stream_on_a_running_job_reconnects_without_loss(hub: HubEmulator, api: HfApi) -> None:
    lines = [f"step {n}" for n in range(6)]
    hub.script_job(lines=lines, line_delay=0.1, drop_after=2)
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada", follow=True)) == lines
    assert hub.log_connections(job.id) == 2


def test_a_stream_that_ends_early_loses_lines_if_the_job_ends_within_two_seconds(
    hub: HubEmulator, api: HfApi
) -> None:
    # A clean early end makes the client wait 2 s before re-checking the stage; a job that
    # finished meanwhile is taken as done, and the lines after the cut are never fetched.
    lines = [f"step {n}" for n in range(4)]
    hub.script_job(lines=lines, line_delay=0.2, drop_after=1, drop_mode="end")
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada", follow=True)) == lines[:1]
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada")) == lines


def test_tail_returns_the_last_lines(hub: HubEmulator, api: HfApi) -> None:
    hub.script_job(lines=["a", "b", "c", "d"], line_delay=0)
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")
    assert list(api.fetch_job_logs(job_id=job.id, namespace="ada", tail=2)) == ["c", "d"]
    assert hub.wait_for_request("GET", r"/logs$").query == {"tail": ["2"]}


def test_cancel_ends_a_followed_job(hub: HubEmulator, api: HfApi) -> None:
    hub.script_job(lines=["started"], line_delay=0, final_stage=None)
    job = api.run_job(image="python:3.12", command=["sleep", "inf"], namespace="ada")
    followed: list[str] = []
    def follow() -> None:
        followed.extend(api.fetch_job_logs(job_id=job.id, namespace="ada", follow=True))

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    hub.wait_for_request("GET", r"/logs$")
    api.cancel_job(job_id=job.id, namespace="ada")
    reader.join(timeout=3)
    assert not reader.is_alive() and followed == ["started"]
    assert api.inspect_job(job_id=job.id, namespace="ada").status.stage == "CANCELED"


def test_stop_is_prompt_while_a_log_stream_is_open(hub: HubEmulator, api: HfApi) -> None:
    hub.script_job(lines=["waiting"], final_stage=None)
    job = api.run_job(image="python:3.12", command=["true"], namespace="ada")
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            list(api.fetch_job_logs(job_id=job.id, namespace="ada"))
        except Exception as exc:  # the dropped stream, as the client reports it
            outcome.append(exc)

    reader = threading.Thread(target=fetch, daemon=True)
    reader.start()
    hub.wait_for_request("GET", r"/logs$")
    started = time.monotonic()
    hub.stop()
    assert time.monotonic() - started < 1.0
    reader.join(timeout=2)
    assert not reader.is_alive() and len(outcome) == 1


# ---- scheduled jobs ----------------------------------------------------------------------


def test_scheduled_jobs_round_trip(hub: HubEmulator, api: HfApi) -> None:
    created = api.create_scheduled_job(
        image="python:3.12", command=["python", "nightly.py"], schedule="0 9 * * 1", labels={"kind": "eval"},
        secrets={"HF_TOKEN": "hf_secret"}, namespace="ada",
    )
    assert created.schedule == "0 9 * * 1" and created.suspend is False
    assert created.job_spec.secrets == {"HF_TOKEN": None}
    next_run = created.status.next_job_run_at
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 9, 0)

    assert [s.id for s in api.list_scheduled_jobs(namespace="ada", labels={"kind": "eval"})] == [created.id]
    api.suspend_scheduled_job(scheduled_job_id=created.id, namespace="ada")
    suspended = api.inspect_scheduled_job(scheduled_job_id=created.id, namespace="ada")
    assert suspended.suspend is True and suspended.status.next_job_run_at is None
    api.resume_scheduled_job(scheduled_job_id=created.id, namespace="ada")
    assert api.inspect_scheduled_job(scheduled_job_id=created.id, namespace="ada").suspend is False

    run = api.trigger_scheduled_job(scheduled_job_id=created.id, namespace="ada")
    assert run.initiator.type == "scheduled-job" and run.command == ["python", "nightly.py"]
    assert api.inspect_scheduled_job(scheduled_job_id=created.id, namespace="ada").status.last_job.id == run.id
    moved = api.update_scheduled_job_schedule(scheduled_job_id=created.id, schedule="@daily", namespace="ada")
    assert moved.schedule == "@daily" and moved.status.next_job_run_at.hour == 0

    api.delete_scheduled_job(scheduled_job_id=created.id, namespace="ada")
    assert api.list_scheduled_jobs(namespace="ada") == []
    with pytest.raises(JobNotFoundError):
        api.inspect_scheduled_job(scheduled_job_id=created.id, namespace="ada")


def test_scheduled_jobs_reject_bad_schedules_and_accept_uv_scripts(hub: HubEmulator, api: HfApi) -> None:
    with pytest.raises(BadRequestError, match="Invalid schedule"):
        api.create_scheduled_job(image="python:3.12", command=["true"], schedule="every tuesday", namespace="ada")
    uv = api.create_scheduled_uv_job("https://example.com/eval.py", schedule="@hourly", namespace="ada")
    assert uv.job_spec.command == ["uv", "run", "https://example.com/eval.py"]
    assert uv.job_spec.docker_image == UV_IMAGE


# ---- Spaces ------------------------------------------------------------------------------


def test_space_duplicate_secrets_runtime_upload_and_delete(hub: HubEmulator, api: HfApi) -> None:
    hub.script_space(stages=["BUILDING", "BUILDING", "RUNNING"])
    url = api.duplicate_repo(
        "ml-intern/sandbox-template", to_id="ada/sandbox-1", repo_type="space", private=True,
        space_hardware="cpu-upgrade", space_secrets=[{"key": "SEED", "value": "42"}],
    )
    assert (url.repo_id, url.repo_type) == ("ada/sandbox-1", "space")
    assert hub.space_info("ada/sandbox-1")["duplicated_from"] == "ml-intern/sandbox-template"

    api.add_space_secret("ada/sandbox-1", "HF_TOKEN", "hf_secret", description="session token")
    assert hub.space_secrets("ada/sandbox-1") == {"SEED": "42", "HF_TOKEN": "hf_secret"}
    listed = api.get_space_secrets("ada/sandbox-1")
    assert set(listed) == {"SEED", "HF_TOKEN"} and listed["HF_TOKEN"].description == "session token"

    stages = [api.get_space_runtime("ada/sandbox-1") for _ in range(4)]
    assert [r.stage for r in stages] == ["BUILDING", "BUILDING", "RUNNING", "RUNNING"]
    assert stages[-1].hardware == "cpu-upgrade"

    info = api.upload_file(
        path_or_fileobj=b"print('sandbox up')\n", path_in_repo="app.py", repo_id="ada/sandbox-1",
        repo_type="space", commit_message="add app",
    )
    assert info.oid == hub.commits("ada/sandbox-1")[-1]["oid"]
    assert hub.space_files("ada/sandbox-1") == {"app.py": b"print('sandbox up')\n"}
    assert api.get_space_runtime("ada/sandbox-1").stage == "BUILDING", "a push rebuilds the Space"

    api.delete_repo("ada/sandbox-1", repo_type="space")
    assert not hub.repo_exists("ada/sandbox-1")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo("ada/sandbox-1", repo_type="space")
    api.delete_repo("ada/sandbox-1", repo_type="space", missing_ok=True)


def test_space_build_error_and_ownership(hub: HubEmulator, api: HfApi) -> None:
    hub.script_space(stages=["BUILDING", "BUILD_ERROR"], message="pip install failed", repo_id="ml-team/box")
    api.create_repo("ml-team/box", repo_type="space", space_sdk="docker")
    assert api.get_space_runtime("ml-team/box").stage == "BUILDING"
    failed = api.get_space_runtime("ml-team/box")
    assert failed.stage == "BUILD_ERROR" and failed.raw["errorMessage"] == "pip install failed"

    again = api.create_repo("ml-team/box", repo_type="space", space_sdk="docker", exist_ok=True)
    assert again.repo_id == "ml-team/box"
    with pytest.raises(HfHubHTTPError) as caught:
        api.duplicate_repo("ml-team/box", to_id="someone-else/box", repo_type="space")
    assert caught.value.response.status_code == 403
