"""The Hub gateway (agent/hub_gateway.py) with the real huggingface_hub client pointed at it
and the Hub emulator behind it: reads pass with the real token added, writes and spending
wait for ``decide``, big downloads stream, redirects come back through the gateway only when
they point at the Hub itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from agent.hub_gateway import CommitFile, GatewayRequest, GatewayVerdict, HubGateway
from agent.hub_gateway_routes import RouteKind, classify, repo_of
from tests.fakes.hub_blobs import READ_ONLY_GATEWAY, BlobServer, blob_bytes

REPO_ROOT = Path(__file__).resolve().parent.parent


class Policy:
    """A scripted ``decide``: records every request and answers with ``verdict``."""

    def __init__(self, verdict: GatewayVerdict = GatewayVerdict(True, "")) -> None:
        self.verdict = verdict
        self.asked: list[GatewayRequest] = []
        self.jobs: list[tuple[dict, GatewayRequest]] = []

    async def decide(self, request: GatewayRequest) -> GatewayVerdict:
        self.asked.append(request)
        return self.verdict

    def on_job(self, job: dict, request: GatewayRequest) -> None:
        self.jobs.append((job, request))


@pytest.fixture(autouse=True)
def client_online(request, monkeypatch):
    """huggingface_hub online, and ``hf_hub_download(endpoint=)`` honoured: it only swaps the
    endpoint into a URL that starts with ``constants.ENDPOINT``, and its URL template was
    built from the default endpoint at import (the ``hub`` fixture points ENDPOINT elsewhere)."""
    from huggingface_hub import constants

    if "hub" in request.fixturenames:
        request.getfixturevalue("hub")  # it patches ENDPOINT; this fixture must come after it
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    base = constants.HUGGINGFACE_CO_URL_TEMPLATE.split("/{repo_id}")[0]
    monkeypatch.setattr(constants, "ENDPOINT", base)


@pytest.fixture
def policy() -> Policy:
    return Policy()


@pytest.fixture
async def gateway(hub, policy):
    gw = HubGateway(hub.endpoint, lambda: "hf_test", policy.decide, on_job=policy.on_job)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
def blobs():
    with BlobServer() as server:
        yield server


def api_for(gw: HubGateway) -> HfApi:
    return HfApi(endpoint=gw.url, token=gw.stand_in)


# ---- reads ----


async def test_reads_reach_the_hub_with_the_real_token_and_never_the_stand_in(hub, gateway, policy):
    hub.add_repo("ada/demo", files={"README.md": "# demo\n", "config.json": "{}"})
    api = api_for(gateway)

    me = await asyncio.to_thread(api.whoami)
    info = await asyncio.to_thread(api.model_info, "ada/demo")
    path = await asyncio.to_thread(hf_hub_download, "ada/demo", "config.json", endpoint=gateway.url,
                                   token=gateway.stand_in)

    assert me["name"] == "ada"
    assert sorted(s.rfilename for s in info.siblings) == ["README.md", "config.json"]
    assert Path(path).read_text() == "{}"
    tokens = {r.token for r in hub.requests}
    assert tokens == {"hf_test"}
    assert gateway.stand_in.startswith("hf_gateway_") and len(gateway.stand_in) == len("hf_gateway_") + 32
    assert policy.asked == []


async def test_a_wrong_stand_in_gets_401_with_a_sentence_and_reaches_nothing(hub, gateway):
    api = HfApi(endpoint=gateway.url, token="hf_gateway_" + "0" * 32)

    with pytest.raises(HfHubHTTPError) as refused_whoami:  # whoami words its own 401 message
        await asyncio.to_thread(api.whoami)
    with pytest.raises(HfHubHTTPError) as caught:
        await asyncio.to_thread(api.list_repo_refs, "ada/demo")

    assert refused_whoami.value.response.status_code == caught.value.response.status_code == 401
    assert "not the one the agent gave this process" in str(caught.value)
    assert hub.requests == []


async def test_no_token_is_forwarded_without_any(hub, gateway):
    hub.add_repo("ada/public", files={"README.md": "hi"})
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{gateway.url}/api/models/ada/public")

    assert answer.status_code == 200
    assert [r.token for r in hub.requests] == [None]


async def test_start_is_idempotent_and_the_gateway_is_lazy(hub, policy):
    gw = HubGateway(hub.endpoint, lambda: "hf_test", policy.decide)
    assert not gw.running
    with pytest.raises(RuntimeError, match="await start"):
        gw.url  # noqa: B018
    first, second = await asyncio.gather(gw.start(), gw.start())
    assert first == second == gw.url and gw.url.startswith("http://127.0.0.1:")
    await gw.stop()
    await gw.stop()
    assert not gw.running


# ---- jobs ----


async def test_run_job_asks_with_flavor_and_timeout_and_a_refusal_reaches_the_client(hub, gateway, policy):
    reason = "bash: python train.py wants a10g-large for up to 2h ($4.00); refused in headless mode without --yolo."
    policy.verdict = GatewayVerdict(False, reason)
    api = api_for(gateway)

    with pytest.raises(HfHubHTTPError) as caught:
        await asyncio.to_thread(api.run_job, image="python:3.12", command=["python", "-c", "print(1)"],
                                flavor="a10g-large", timeout="2h")

    assert caught.value.response.status_code == 403
    assert reason in str(caught.value)
    [asked] = policy.asked
    assert asked.kind is RouteKind.JOB_CREATE and asked.method == "POST" and asked.path == "/api/jobs/ada"
    assert asked.body["flavor"] == "a10g-large" and asked.body["timeoutSeconds"] == 7200
    assert hub.job_ids() == [] and policy.jobs == []


async def test_an_allowed_job_runs_and_its_answer_reaches_on_job(hub, gateway, policy):
    api = api_for(gateway)

    job = await asyncio.to_thread(api.run_job, image="python:3.12", command=["echo", "hi"], flavor="cpu-basic")

    assert hub.job_ids() == [job.id]
    assert hub.job_spec(job.id)["flavor"] == "cpu-basic"
    [(job_json, request)] = policy.jobs
    assert job_json["id"] == job.id and request.kind is RouteKind.JOB_CREATE
    assert {r.token for r in hub.requests} == {"hf_test"}


async def test_job_logs_stream_through_as_they_are_written(hub, gateway):
    """The log stream of a job that has not ended: lines must arrive while it runs, which a
    gateway that buffered answers would never deliver."""
    hub.script_job(lines=["epoch 1 loss 2.0", "epoch 2 loss 1.5"], line_delay=0.05, final_stage=None)
    api = api_for(gateway)
    job = await asyncio.to_thread(api.run_job, image="python:3.12", command=["python", "train.py"])

    def follow() -> list[str]:
        lines = []
        for line in api.fetch_job_logs(job_id=job.id, follow=True):
            lines.append(line)
            if len(lines) == 2:
                hub.end_job(job.id)  # only a streamed answer gets here before the job ends
        return lines

    lines = await asyncio.wait_for(asyncio.to_thread(follow), timeout=20)
    assert lines == ["epoch 1 loss 2.0", "epoch 2 loss 1.5"]


async def test_a_caller_label_names_the_process_that_asked(hub, gateway, policy):
    token = gateway.issue_stand_in("bash: python train.py")
    api = HfApi(endpoint=gateway.url, token=token)

    await asyncio.to_thread(api.run_job, image="python:3.12", command=["true"], flavor="cpu-basic")

    assert policy.asked[0].caller == "bash: python train.py"


async def test_a_failing_policy_refuses(hub, gateway, policy):
    async def broken(request: GatewayRequest) -> GatewayVerdict:
        raise RuntimeError("boom")

    gateway.decide = broken
    with pytest.raises(HfHubHTTPError) as caught:
        await asyncio.to_thread(api_for(gateway).run_job, image="python:3.12", command=["true"])

    assert caught.value.response.status_code == 403 and "could not check" in str(caught.value)
    assert hub.job_ids() == []


# ---- commits and other writes ----


async def test_a_commit_is_gated_with_its_file_list_and_preupload_passes(hub, gateway, policy):
    hub.add_repo("ada/demo", files={"README.md": "# demo\n"})
    api = api_for(gateway)

    await asyncio.to_thread(api.upload_file, path_or_fileobj=b"hello", path_in_repo="notes/a.txt",
                            repo_id="ada/demo", commit_message="add notes")

    [asked] = policy.asked
    assert asked.kind is RouteKind.COMMIT
    assert (asked.repo_type, asked.repo_id) == ("model", "ada/demo")
    assert asked.commit_header["summary"] == "add notes"
    assert asked.files == (CommitFile("notes/a.txt", "add", 5),)
    assert [r.path for r in hub.requests if r.method == "POST"] == [
        "/api/models/ada/demo/preupload/main", "/api/models/ada/demo/commit/main"]
    assert hub.branch_files("ada/demo", "main")["notes/a.txt"] == b"hello"


async def test_a_refused_commit_never_reaches_the_hub(hub, gateway, policy):
    hub.add_repo("ada/demo", files={"README.md": "# demo\n"})
    policy.verdict = GatewayVerdict(False, "Uploads to ada/demo need your approval; none was given.")

    with pytest.raises(HfHubHTTPError) as caught:
        await asyncio.to_thread(api_for(gateway).upload_file, path_or_fileobj=b"x", path_in_repo="x.txt",
                                repo_id="ada/demo")

    assert "need your approval" in str(caught.value)
    assert not [r for r in hub.requests if "/commit/" in r.path]


async def test_a_big_inline_file_is_measured_not_held(hub, gateway, policy):
    hub.add_repo("ada/demo", files={"README.md": "# demo\n"})
    content = bytes(range(256)) * (3 * 4096 + 1)  # 3 MB and change: one NDJSON line over the 1 MB window

    await asyncio.to_thread(api_for(gateway).upload_file, path_or_fileobj=content, path_in_repo="data/blob.bin",
                            repo_id="ada/demo")

    assert policy.asked[0].files == (CommitFile("data/blob.bin", "add", len(content)),)
    assert hub.branch_files("ada/demo", "main")["data/blob.bin"] == content


async def test_repo_creation_deletion_and_an_unknown_post_are_gated(hub, gateway, policy):
    hub.add_repo("ada/demo", files={"README.md": "# demo\n"})
    policy.verdict = GatewayVerdict(False, "No Hub writes in this session.")
    api = api_for(gateway)

    for call in (lambda: api.create_repo("ada/new", private=True),
                 lambda: api.delete_repo("ada/demo"),
                 lambda: api.create_collection("Reading list", namespace="ada")):
        with pytest.raises(HfHubHTTPError, match="No Hub writes in this session"):
            await asyncio.to_thread(call)

    kinds = [(a.kind, a.repo_id) for a in policy.asked]
    assert kinds == [(RouteKind.REPO_CREATE, "ada/new"), (RouteKind.REPO_DELETE, "ada/demo"),
                     (RouteKind.WRITE, None)]
    assert policy.asked[2].path == "/api/collections" and policy.asked[2].body["title"] == "Reading list"
    assert policy.asked[0].body["visibility"] == "private"
    assert [r.method for r in hub.requests] == []


async def test_a_control_body_over_the_cap_is_refused(hub, gateway, policy):
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{gateway.url}/api/repos/create", content=b"{" + b" " * (2 << 20) + b"}",
                                   headers={"Authorization": f"Bearer {gateway.stand_in}"})

    assert answer.status_code == 413 and "over 1 MB" in answer.json()["error"]
    assert policy.asked == [] and hub.requests == []


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("GET", "/api/models/ada/demo", RouteKind.READ),
    ("HEAD", "/datasets/ada/d/resolve/main/x.parquet", RouteKind.READ),
    ("POST", "/api/models/ada/demo/paths-info/main", RouteKind.READ),
    ("POST", "/api/datasets/ada/d/preupload/main", RouteKind.UPLOAD_PREP),
    ("POST", "/datasets/ada/d.git/info/lfs/objects/batch", RouteKind.UPLOAD_PREP),
    ("POST", "/api/datasets/ada/d/commit/main", RouteKind.COMMIT),
    ("POST", "/api/jobs/ada", RouteKind.JOB_CREATE),
    ("POST", "/api/jobs/ada/abc/duplicate", RouteKind.JOB_CREATE),
    ("POST", "/api/jobs/ada/abc/cancel", RouteKind.JOB_CANCEL),
    ("POST", "/api/scheduled-jobs/ada", RouteKind.SCHEDULED_JOB_CREATE),
    ("POST", "/api/scheduled-jobs/ada/s1/run", RouteKind.JOB_CREATE),
    ("POST", "/api/scheduled-jobs/ada/s1/suspend", RouteKind.SCHEDULED_JOB_SUSPEND),
    ("POST", "/api/scheduled-jobs/ada/s1/resume", RouteKind.SCHEDULED_JOB_RESUME),
    ("POST", "/api/scheduled-jobs/ada/s1/schedule", RouteKind.SCHEDULED_JOB_UPDATE),
    ("DELETE", "/api/scheduled-jobs/ada/s1", RouteKind.SCHEDULED_JOB_DELETE),
    ("POST", "/api/spaces/ada/s/hardware", RouteKind.SPACE_HARDWARE),
    ("POST", "/api/spaces/ada/s/secrets", RouteKind.SPACE_SECRETS),
    ("DELETE", "/api/spaces/ada/s/variables", RouteKind.SPACE_VARIABLES),
    ("POST", "/api/spaces/ada/s/restart", RouteKind.SPACE_RUNTIME),
    ("POST", "/v2/endpoint/ada", RouteKind.ENDPOINT_CREATE),
    ("PUT", "/v2/endpoint/ada/e1", RouteKind.ENDPOINT_UPDATE),
    ("POST", "/v2/endpoint/ada/e1/resume", RouteKind.ENDPOINT_RESUME),
    ("POST", "/v2/endpoint/ada/e1/scale-to-zero", RouteKind.ENDPOINT_SCALE),
    ("POST", "/api/endpoints/ada", RouteKind.ENDPOINT_CREATE),
    ("POST", "/api/repos/create", RouteKind.REPO_CREATE),
    ("DELETE", "/api/repos/delete", RouteKind.REPO_DELETE),
    ("POST", "/api/repos/move", RouteKind.REPO_MOVE),
    ("PUT", "/api/datasets/ada/d/settings", RouteKind.REPO_SETTINGS),
    ("POST", "/api/models/ada/m/branch/dev", RouteKind.BRANCH_CREATE),
    ("DELETE", "/api/models/ada/m/branch/dev", RouteKind.BRANCH_DELETE),
    ("POST", "/api/models/ada/m/tag/main", RouteKind.TAG_CREATE),
    ("DELETE", "/api/models/ada/m/tag/v1", RouteKind.TAG_DELETE),
    ("POST", "/api/models/ada/m/discussions", RouteKind.DISCUSSION_CREATE),
    ("POST", "/api/models/ada/m/discussions/3/merge", RouteKind.PR_MERGE),
    ("POST", "/api/models/ada/m/discussions/3/comment", RouteKind.DISCUSSION_COMMENT),
    ("POST", "/api/models/ada/m/discussions/3/status", RouteKind.DISCUSSION_STATUS),
    ("POST", "/ada/m.git/git-receive-pack", RouteKind.GIT_PUSH),
    ("POST", "/ada/m.git/git-upload-pack", RouteKind.READ),
    ("PATCH", "/api/collections/ada/c-1", RouteKind.WRITE),
    ("POST", "/api/some/new/route", RouteKind.WRITE),
])
def test_classify(method, path, kind):
    assert classify(method, path, {}) is kind
    assert kind.gated == (kind not in (RouteKind.READ, RouteKind.UPLOAD_PREP))


def test_repo_of():
    assert repo_of("/api/datasets/ada/d/commit/main") == ("dataset", "ada/d")
    assert repo_of("/spaces/ada/s/resolve/main/app.py") == ("space", "ada/s")
    assert repo_of("/ada/m/resolve/main/model.safetensors") == ("model", "ada/m")
    assert repo_of("/api/jobs/ada") is None and repo_of("/api/repos/create") is None


# ---- redirects, ranges, big files ----


async def test_redirects_to_the_hub_come_back_through_the_gateway_and_others_pass_unchanged(blobs, policy):
    gw = HubGateway(blobs.endpoint, lambda: "hf_test", policy.decide)
    await gw.start()
    try:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            async def location(to: str) -> str:
                answer = await client.get(f"{gw.url}/redirect", params={"to": to},
                                          headers={"Authorization": f"Bearer {gw.stand_in}"})
                assert answer.status_code == 302
                return answer.headers["location"]

            assert await location("https://cdn.example.org/blob?sig=1") == "https://cdn.example.org/blob?sig=1"
            assert await location(f"{blobs.endpoint}/blobs/w.bin?x=1") == f"{gw.url}/blobs/w.bin?x=1"
            assert await location("/blobs/w.bin") == "/blobs/w.bin"  # relative: already back here
    finally:
        await gw.stop()


async def test_a_download_redirected_to_another_host_never_carries_the_real_token(blobs, policy, tmp_path):
    with BlobServer() as cdn:
        cdn.add_blob("weights.bin", 3_000_000)
        blobs.add_blob("weights.bin", 3_000_000, redirect_to=cdn.endpoint)
        gw = HubGateway(blobs.endpoint, lambda: "hf_test", policy.decide)
        await gw.start()
        try:
            path = await asyncio.to_thread(hf_hub_download, "ada/m", "weights.bin", endpoint=gw.url,
                                           token=gw.stand_in, cache_dir=tmp_path)
        finally:
            await gw.stop()
        assert Path(path).read_bytes() == blob_bytes(0, 3_000_000)
        assert cdn.requests and all("hf_test" not in (r.authorization or "") for r in cdn.requests)
        assert {r.authorization for r in blobs.requests} == {"Bearer hf_test"}




def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_200_mb_download_streams_through_in_constant_memory_and_ranges_pass(blobs, tmp_path):
    size = 200 * 1024 * 1024
    blobs.add_blob("big.bin", size)
    proc = subprocess.Popen([sys.executable, "-c", READ_ONLY_GATEWAY, blobs.endpoint], cwd=REPO_ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        served = json.loads(proc.stdout.readline())
        url, auth = served["url"], {"Authorization": f"Bearer {served['stand_in']}"}
        warm = httpx.get(f"{url}/blobs/big.bin", headers={**auth, "Range": "bytes=0-1048575"})
        assert warm.status_code == 206
        baseline = _vm(proc.pid, "VmRSS")

        started = time.monotonic()
        path = hf_hub_download("ada/m", "big.bin", endpoint=url, token=served["stand_in"], cache_dir=tmp_path)
        elapsed = time.monotonic() - started
        peak = _vm(proc.pid, "VmHWM")

        digest, expected = hashlib.sha256(), hashlib.sha256()
        with open(path, "rb") as downloaded:
            while piece := downloaded.read(1 << 22):
                digest.update(piece)
        for offset in range(0, size, 1 << 22):
            expected.update(blob_bytes(offset, min(1 << 22, size - offset)))
        assert digest.hexdigest() == expected.hexdigest()
        assert peak - baseline < 48 * 1024 * 1024, f"gateway grew by {(peak - baseline) >> 20} MB for a 200 MB file"

        start, end = 123_456_789, 123_499_999
        ranged = httpx.get(f"{url}/ada/m/resolve/main/big.bin", headers={**auth, "Range": f"bytes={start}-{end}"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert ranged.content == blob_bytes(start, end - start + 1)
        tail = httpx.get(f"{url}/blobs/big.bin", headers={**auth, "Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == blob_bytes(size - 10, 10)
        assert elapsed < 60
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
