"""agent/net.py against real loopback hosts: which requests carry which token, redirects,
rate limits, errors as sentences, bounded bodies and the disk cache."""

from __future__ import annotations

import time

import pytest

from agent.config import Config, ConfigError, _load_file
from agent.net import Endpoints, Net, NetError, retry_after_seconds
from tests.fakes._loopback import RawResponse
from tests.fakes.sink_server import SinkServer

HF, GH = "hf_secret_token", "ghp_secret_token"


@pytest.fixture
def two_hosts(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the first host plays the Hub
    with SinkServer() as hub, SinkServer() as other:
        yield hub, other


def make_net(hub: SinkServer, tmp_path, **kw) -> Net:
    endpoints = Endpoints.resolve({"hub": hub.base_url, "github_api": hub.url("/gh"), "datasets_server": hub.url("/ds")},
                                  env={})
    return Net(endpoints, hf_token=lambda: HF, github_token=lambda: GH, cache_dir=tmp_path / "cache", **kw)


def auth_of(request) -> str:
    return request.headers.get("authorization", "")


async def test_tokens_go_only_to_their_own_origin(two_hosts, tmp_path):
    hub, other = two_hosts
    net = make_net(hub, tmp_path)
    try:
        await net.get(hub.url("/api/models/x"), auth="hf")
        await net.get(other.url("/api/models/x"), auth="hf")  # same path, another host: no token
        await net.get(other.url("/repos/a/b"), auth="github")
        await net.get(hub.url("/page"))  # auth not asked for: none
    finally:
        await net.aclose()
    assert auth_of(hub.requests[0]) == f"Bearer {HF}"
    assert auth_of(hub.requests[1]) == ""
    assert all(auth_of(r) == "" for r in other.requests)


async def test_a_redirect_to_another_host_drops_the_token(two_hosts, tmp_path):
    hub, other = two_hosts
    hub.route("/docs/moved", RawResponse(302, headers={"Location": other.url("/landing")}))
    net = make_net(hub, tmp_path)
    try:
        response = await net.get(hub.url("/docs/moved"), auth="hf")
    finally:
        await net.aclose()
    assert response.status == 200 and response.url == other.url("/landing")
    assert auth_of(hub.requests[0]) == f"Bearer {HF}"
    assert [auth_of(r) for r in other.requests] == [""]


def test_subdomains_of_the_hub_get_the_token_lookalikes_do_not():
    net = Net(Endpoints.resolve({}, env={}), hf_token=lambda: HF, github_token=lambda: GH)
    assert net.token_for("https://huggingface.co/api/x", "hf") == HF
    assert net.token_for("https://datasets-server.huggingface.co/rows", "hf") == HF
    assert net.token_for("https://cdn-lfs.huggingface.co/x", "hf") == HF
    assert net.token_for("https://huggingface.co.evil.com/api", "hf") is None
    assert net.token_for("https://evilhuggingface.co/api", "hf") is None
    assert net.token_for("http://huggingface.co:8080/api", "hf") is None  # another port
    assert net.token_for("https://api.github.com/repos/a/b", "github") == GH
    assert net.token_for("https://api.github.com/repos/a/b", "hf") is None
    assert net.token_for("https://raw.githubusercontent.com/a/b", "github") is None
    mirror = Net(Endpoints.resolve({"datasets_server": "https://viewer.example.org"}, env={}), hf_token=lambda: HF)
    assert mirror.token_for("https://viewer.example.org/rows", "hf") is None  # not under the Hub's host


async def test_a_short_retry_after_is_waited_once_a_long_one_reported_and_remembered(two_hosts, tmp_path):
    hub, _ = two_hosts
    answers = iter([RawResponse(429, b"{}", "application/json", {"Retry-After": "1"}),
                    RawResponse(200, b'{"ok": true}', "application/json")])
    hub.route("/short", lambda request: next(answers))
    hub.route("/long", RawResponse(429, b'{"error": "slow down"}', "application/json", {"Retry-After": "120"}))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    net = make_net(hub, tmp_path, sleep=fake_sleep)
    try:
        assert (await net.get(hub.url("/short"))).json() == {"ok": True}
        assert slept == [1.0]
        started = time.monotonic()
        with pytest.raises(NetError) as first:
            await net.get(hub.url("/long"))
        assert first.value.kind == "rate_limited" and first.value.retry_after == 120
        assert "wait 120 s" in first.value.message
        with pytest.raises(NetError) as again:  # inside the window: no request at all
            await net.get(hub.url("/anything-else"))
        assert "asked us to wait" in again.value.message
        assert time.monotonic() - started < 2 and slept == [1.0]
    finally:
        await net.aclose()
    assert [r.path for r in hub.requests].count("/long") == 1
    assert "/anything-else" not in [r.path for r in hub.requests]


@pytest.mark.parametrize("status,headers,body,kind,words", [
    (401, {}, b'{"error": "Invalid credentials"}', "auth", "check HF_TOKEN"),
    (403, {"X-Error-Code": "GatedRepo"}, b'{"error": "Access to model org/llama is restricted"}', "gated",
     "accept the terms at"),
    (404, {}, b'{"error": "Repository not found"}', "not_found", "Not found (404)"),
    (402, {}, b'{"error": "no credits"}', "payment", "402 Payment Required"),
    (500, {}, b"oops", "server", "server error (500)"),
])
async def test_error_statuses_become_sentences(two_hosts, tmp_path, status, headers, body, kind, words):
    hub, _ = two_hosts
    hub.route("/api/models/org/llama", RawResponse(status, body, "application/json", headers))
    net = make_net(hub, tmp_path, sleep=_no_sleep)
    try:
        with pytest.raises(NetError) as err:
            await net.get(hub.url("/api/models/org/llama"), auth="hf")
    finally:
        await net.aclose()
    assert err.value.kind == kind and words in err.value.message
    if kind == "gated":
        assert f"{hub.base_url}/org/llama" in err.value.message


async def _no_sleep(seconds: float) -> None:
    return None


async def test_refused_and_unresolvable_hosts_fail_fast_with_a_reason(tmp_path):
    net = Net(Endpoints.resolve({}, env={}), cache_dir=tmp_path)
    started = time.monotonic()
    try:
        with pytest.raises(NetError) as refused:
            await net.get("http://127.0.0.1:9/x")
        with pytest.raises(NetError) as dns:
            await net.get("http://no-such-host.invalid/x")
    finally:
        await net.aclose()
    assert refused.value.kind == "refused" and "refused" in refused.value.message
    assert dns.value.kind == "offline" and "does not resolve" in dns.value.message
    assert time.monotonic() - started < 10


async def test_bodies_are_bounded_and_cached_answers_are_reused(two_hosts, tmp_path):
    hub, _ = two_hosts
    hub.route("/big", RawResponse(200, b"x" * 100_000))
    net = make_net(hub, tmp_path)
    try:
        big = await net.get(hub.url("/big"), max_bytes=10_000)
        assert big.truncated and len(big.content) == 10_000
        first = await net.get(hub.url("/paper"), cache_ttl=3600)
        second = await net.get(hub.url("/paper"), cache_ttl=3600)
        expired = await net.get(hub.url("/paper"), cache_ttl=0.000001)
    finally:
        await net.aclose()
    assert not first.from_cache and second.from_cache and second.content == first.content
    assert not expired.from_cache
    assert [r.path for r in hub.requests].count("/paper") == 2


def test_hub_offline_mode_is_reported_without_a_request(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    net = Net(Endpoints.resolve({}, env={}))
    assert net.hub_offline("https://huggingface.co/api/papers/x")
    assert not net.hub_offline("https://arxiv.org/html/2401.1")


def test_endpoints_environment_over_config_over_defaults():
    e = Endpoints.resolve({"arxiv": "http://mirror.local/arxiv/"}, env={"GITHUB_API_URL": "http://gh.local"})
    assert e.arxiv == "http://mirror.local/arxiv" and e.github_api == "http://gh.local"
    assert e.hub == "https://huggingface.co"
    assert Endpoints.resolve({"arxiv": "http://a"}, env={"MLINTERN_ARXIV_URL": "http://b"}).arxiv == "http://b"


def test_config_rejects_unknown_or_malformed_endpoints(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"endpoints": {"arxvi": "http://x"}}')
    with pytest.raises(ConfigError, match="unknown endpoint"):
        _load_file(path)
    path.write_text('{"endpoints": {"arxiv": "ftp://x"}}')
    with pytest.raises(ConfigError, match="http"):
        _load_file(path)
    assert Config(endpoints={"arxiv": "http://x"}).endpoints["arxiv"] == "http://x"


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10, abs=1)
    assert retry_after_seconds("soon") is None


async def test_reject_stops_before_the_body_and_forms_post_url_encoded(two_hosts, tmp_path):
    hub, other = two_hosts
    other.route("/file.bin", RawResponse(200, b"\0" * 2_000_000, "application/octet-stream"))
    net = make_net(hub, tmp_path)
    try:
        with pytest.raises(NetError) as err:
            await net.get(other.url("/file.bin"),
                          reject=lambda h: "binary" if h.get("content-type", "").startswith("application/oct") else None)
        await net.request("POST", other.url("/search"), form={"q": "lora rank"})
    finally:
        await net.aclose()
    assert err.value.kind == "rejected" and err.value.message == "binary"
    search = other.requests[-1]
    assert search.method == "POST" and search.body == b"q=lora+rank"
    assert search.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_a_callers_key_header_stays_with_its_host_across_redirects(two_hosts, tmp_path):
    hub, other = two_hosts
    hub.route("/graph/moved", RawResponse(302, headers={"Location": other.url("/elsewhere")}))
    net = make_net(hub, tmp_path)
    try:
        await net.get(hub.url("/graph/moved"), headers={"x-api-key": "s2-key", "Accept": "application/json"})
    finally:
        await net.aclose()
    assert hub.requests[0].headers["x-api-key"] == "s2-key"
    assert "x-api-key" not in other.requests[0].headers
    assert other.requests[0].headers["accept"] == "application/json"


async def test_the_configured_cache_ttl_caps_what_tools_ask_for(two_hosts, tmp_path):
    hub, _ = two_hosts
    net = make_net(hub, tmp_path, max_cache_ttl_s=0)  # knowledge_cache_ttl_s: 0 turns the cache off
    try:
        await net.get(hub.url("/paper"), cache_ttl=3600)
        again = await net.get(hub.url("/paper"), cache_ttl=3600)
    finally:
        await net.aclose()
    assert not again.from_cache and [r.path for r in hub.requests].count("/paper") == 2
    assert Net.for_config(Config(knowledge_cache_ttl_s=60)).max_cache_ttl_s == 60


async def test_cached_answers_belong_to_the_token_that_fetched_them(two_hosts, tmp_path):
    hub, _ = two_hosts
    tokens = iter(["hf_alice", "hf_bob"])
    current = {"token": next(tokens)}
    net = Net(Endpoints.resolve({"hub": hub.base_url}, env={}), hf_token=lambda: current["token"],
              cache_dir=tmp_path / "cache")
    try:
        await net.get(hub.url("/api/datasets/org/private/rows"), auth="hf", cache_ttl=3600)
        current["token"] = next(tokens)  # another account: alice's private answer is not served
        other = await net.get(hub.url("/api/datasets/org/private/rows"), auth="hf", cache_ttl=3600)
    finally:
        await net.aclose()
    assert not other.from_cache and len(hub.requests) == 2


def test_the_cache_is_pruned_by_age_then_by_size(tmp_path):
    import os

    from agent.net import prune_cache

    root = tmp_path / "cache"
    (root / "ab").mkdir(parents=True)
    now = time.time()
    for n, age in enumerate([10 * 86_400, 300, 200, 100]):
        path = root / "ab" / f"entry{n}.json"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
    assert prune_cache(root, ttl_s=86_400, max_bytes=2000) == 2  # the expired one, then the oldest
    assert sorted(p.name for p in (root / "ab").iterdir()) == ["entry2.json", "entry3.json"]
