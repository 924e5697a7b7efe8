"""The Hub gateway's cost on loopback: download throughput direct vs through it, and the
latency it adds to a small metadata request.

    python bench/gateway_throughput.py [--size-mb 200] [--runs 3] [--requests 200] [--json out.json]

Three processes besides this one, so no two share a GIL: the upstreams (a generated-blob
server, tests/fakes/hub_blobs.py, and the Hub emulator, tests/fakes/hub_server.py) and two
gateways (agent/hub_gateway.py), one in front of each. This process is the client (httpx,
keep-alive, the body read and dropped 1 MB at a time).

- **download**: ``GET /blobs/big.bin`` of ``--size-mb`` MB, direct and through the gateway,
  alternated ``--runs`` times; MB/s per run (median and best), and the gateway's CPU seconds
  per GB (from /proc).
- **metadata**: ``GET /api/models/ada/demo`` (repo info, a ~500-byte JSON answer) ``--requests``
  times each way after 20 warm-up requests; median and p95 milliseconds, and the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.hub_blobs import READ_ONLY_GATEWAY  # noqa: E402  (the repository root is on sys.path now)

_UPSTREAMS = """
import json, sys, time
from tests.fakes.hub_blobs import BlobServer
from tests.fakes.hub_server import HubEmulator
blobs, hub = BlobServer().start(), HubEmulator().start()
blobs.add_blob("big.bin", int(sys.argv[1]))
hub.add_repo("ada/demo", files={"README.md": "---\\ntags: [demo]\\n---\\n# demo\\n", "config.json": "{}"})
print(json.dumps({"blobs": blobs.endpoint, "hub": hub.endpoint}), flush=True)
sys.stdin.read()
"""



def _spawn(script: str, *args: str) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _download(client: httpx.Client, url: str, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with client.stream("GET", url, headers=headers) as answer:
        answer.raise_for_status()
        for piece in answer.iter_raw(1 << 20):
            size += len(piece)
    return time.perf_counter() - started, size


def _latencies(client: httpx.Client, url: str, headers: dict, count: int) -> list[float]:
    for _ in range(20):
        client.get(url, headers=headers).raise_for_status()
    out = []
    for _ in range(count):
        started = time.perf_counter()
        client.get(url, headers=headers).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024

    procs = []
    try:
        upstreams_proc, upstreams = _spawn(_UPSTREAMS, str(size))
        procs.append(upstreams_proc)
        blob_gw_proc, blob_gw = _spawn(READ_ONLY_GATEWAY, upstreams["blobs"])
        hub_gw_proc, hub_gw = _spawn(READ_ONLY_GATEWAY, upstreams["hub"])
        procs += [blob_gw_proc, hub_gw_proc]

        direct_auth = {"Authorization": "Bearer hf_test"}
        rates: dict[str, list[float]] = {"direct": [], "gateway": []}
        gateway_cpu = 0.0
        with httpx.Client(timeout=120) as client:
            for _ in range(args.runs):
                seconds, got = _download(client, f"{upstreams['blobs']}/blobs/big.bin", direct_auth)
                assert got == size, f"direct download returned {got} bytes, not {size}"
                rates["direct"].append(size / seconds / 1e6)
                cpu_before = _cpu_seconds(blob_gw_proc.pid)
                seconds, got = _download(client, f"{blob_gw['url']}/blobs/big.bin",
                                         {"Authorization": f"Bearer {blob_gw['stand_in']}"})
                assert got == size, f"gateway download returned {got} bytes, not {size}"
                gateway_cpu += _cpu_seconds(blob_gw_proc.pid) - cpu_before
                rates["gateway"].append(size / seconds / 1e6)
            info = "/api/models/ada/demo"
            direct_ms = _latencies(client, upstreams["hub"] + info, direct_auth, args.requests)
            gateway_ms = _latencies(client, hub_gw["url"] + info,
                                    {"Authorization": f"Bearer {hub_gw['stand_in']}"}, args.requests)
        hwm = _vm_hwm_mb(blob_gw_proc.pid)
    finally:
        for proc in procs:
            proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=10)

    direct_med, gateway_med = statistics.median(rates["direct"]), statistics.median(rates["gateway"])
    cpu_per_gb = gateway_cpu / (size * args.runs / 1e9)
    print(f"download of {args.size_mb} MB, {args.runs} runs each (MB/s)")
    print(f"  {'':10} {'median':>8} {'best':>8}")
    for name in ("direct", "gateway"):
        print(f"  {name:10} {statistics.median(rates[name]):8.0f} {max(rates[name]):8.0f}")
    print(f"  gateway / direct (median): {gateway_med / direct_med:.1%}; gateway CPU {cpu_per_gb:.2f} s per GB; "
          f"gateway VmHWM {hwm:.0f} MB")
    print(f"metadata GET {info}, {args.requests} requests each (ms)")
    print(f"  {'':10} {'median':>8} {'p95':>8}")
    print(f"  {'direct':10} {statistics.median(direct_ms):8.2f} {_p95(direct_ms):8.2f}")
    print(f"  {'gateway':10} {statistics.median(gateway_ms):8.2f} {_p95(gateway_ms):8.2f}")
    added = statistics.median(gateway_ms) - statistics.median(direct_ms)
    print(f"  added by the gateway: {added:.2f} ms median, {_p95(gateway_ms) - _p95(direct_ms):.2f} ms p95")
    if args.json:
        args.json.write_text(json.dumps({
            "size_mb": args.size_mb, "rates_mb_s": rates, "gateway_cpu_s_per_gb": cpu_per_gb,
            "gateway_vm_hwm_mb": hwm, "metadata_ms": {"direct": direct_ms, "gateway": gateway_ms},
        }, indent=1))


if __name__ == "__main__":
    main()
