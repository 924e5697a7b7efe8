"""How long explore_hf_docs takes to index a docs set and to answer queries, cold and warm.

    python bench/docs_search.py [--sections 6] [--pages 250] [--queries 40] [--concurrency 8]

The Hub emulator (tests/fakes/hub_docs.py) serves ``--sections`` x ``--pages`` generated
pages (about 5 KB of Markdown each) on 127.0.0.1. The real ``ExploreHfDocsTool`` runs
against it through the real ``Net``:

* cold: each section's first query fetches the sidebar and every page (8 at a time) and
  writes the FTS5 index; the time is per section, wall clock, network included;
* warm: a new tool instance (a new session) on the same index file, so nothing is fetched;
  per-query time of the whole tool call (SQLite in a thread, rendering, budget) and of the
  bare ``DocsIndex.search``.

Loopback HTTP is much faster than the real Hub, so the cold numbers are a floor for the
network part and an honest number for the parsing and indexing part.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.pop("HF_HUB_OFFLINE", None)

from agent.net import Endpoints, Net  # noqa: E402
from agent.tools.base import SessionToolState, ToolContext  # noqa: E402
from agent.tools.docs import ExploreHfDocsParams, ExploreHfDocsTool  # noqa: E402
from tests.fakes.hub_docs import _TOPICS, _VERBS  # noqa: E402
from tests.fakes.hub_server import HubEmulator  # noqa: E402

SECTIONS = ["transformers", "datasets", "hub", "diffusers", "peft", "trl", "accelerate", "huggingface_hub"]


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"{statistics.median(values) * 1000:.1f} / {p95 * 1000:.1f} / {values[-1] * 1000:.1f} ms"


async def run(args: argparse.Namespace) -> None:
    sections = SECTIONS[: args.sections]
    rng = random.Random(1)
    queries = [" ".join(rng.sample(_TOPICS, rng.choice((1, 2, 3)))) + rng.choice(("", f" {rng.choice(_VERBS)}"))
               for _ in range(args.queries)]
    with tempfile.TemporaryDirectory() as tmp, HubEmulator() as hub:
        hub.generate_docs({name: args.pages for name in sections})
        root = Path(tmp)
        index_path = root / "docs-index.sqlite"

        def ctx() -> ToolContext:
            net = Net(Endpoints.resolve({}, env={"HF_ENDPOINT": hub.endpoint}), hf_token=lambda: "hf_test")
            return ToolContext(session_id="bench", cwd=root, spill_dir=root / "spill", state=SessionToolState(), net=net)

        cold_tool, cold_ctx = ExploreHfDocsTool(index_path=index_path, concurrency=args.concurrency), ctx()
        builds = []
        t_all = time.perf_counter()
        for name in sections:
            t0 = time.perf_counter()
            result = await cold_tool.run(ExploreHfDocsParams(endpoint=name, query=queries[0]), cold_ctx)
            assert result.success, result.output
            builds.append(time.perf_counter() - t0)
        cold_total = time.perf_counter() - t_all
        await cold_ctx.net.aclose()
        fetched = sum(r.path.endswith(".md") for r in hub.requests)

        warm_tool, warm_ctx = ExploreHfDocsTool(index_path=index_path), ctx()
        before = len(hub.requests)
        tool_times, bare_times, hits = [], [], 0
        for i, q in enumerate(queries):
            name = sections[i % len(sections)]
            t0 = time.perf_counter()
            result = await warm_tool.run(ExploreHfDocsParams(endpoint=name, query=q), warm_ctx)
            tool_times.append(time.perf_counter() - t0)
            hits += result.output.count("(score ")
            t0 = time.perf_counter()
            warm_tool.index.search(q, [name], 10)
            bare_times.append(time.perf_counter() - t0)
        listing = []
        for name in sections:
            t0 = time.perf_counter()
            await warm_tool.run(ExploreHfDocsParams(endpoint=name, max_results=50), warm_ctx)
            listing.append(time.perf_counter() - t0)
        assert len(hub.requests) == before, "the warm runs fetched something"
        await warm_ctx.net.aclose()
        size = index_path.stat().st_size + sum(p.stat().st_size for p in root.glob("docs-index.sqlite-*"))

    pages = args.pages * len(sections)
    rows = [
        ("docs set", f"{len(sections)} sections x {args.pages} pages = {pages:,} pages ({fetched:,} .md fetched)"),
        ("cold: build, all sections", f"{cold_total:.2f} s ({cold_total / pages * 1000:.2f} ms/page, "
                                     f"concurrency {args.concurrency})"),
        ("cold: build, per section med/max", f"{statistics.median(builds):.2f} / {max(builds):.2f} s"),
        ("index file", f"{size / 1e6:.1f} MB"),
        ("warm: query, tool call med/p95/max", _ms(tool_times)),
        ("warm: query, DocsIndex.search only", _ms(bare_times)),
        ("warm: list 50 pages, tool call", _ms(listing)),
        ("warm: requests made", "0"),
        ("hits per query (avg)", f"{hits / len(queries):.1f} of 10"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'what'.ljust(width)} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for what, value in rows:
        print(f"| {what.ljust(width)} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=6, help="how many sections (at most 8)")
    parser.add_argument("--pages", type=int, default=250, help="pages per section")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8, help="page fetches in flight per section")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
