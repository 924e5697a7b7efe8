"""litellm's price and window map read without litellm, and the memo of earlier lookups that
spares a start reading the 9 MB file again (agent/llm/model_map.py, issue 17)."""

from __future__ import annotations

import json

import pytest

from agent.config import data_dir
from agent.llm import model_map, runtime


@pytest.fixture
def cold(monkeypatch):
    """A process that has not read the map yet, without litellm."""
    next_start(monkeypatch)
    monkeypatch.setattr(runtime, "is_loaded", lambda: False)


def next_start(monkeypatch):
    monkeypatch.setattr(model_map, "_entries", None)
    monkeypatch.setattr(model_map, "_memos", {})


def _no_map(monkeypatch):
    def refuse():
        raise AssertionError("the map was read although the memo knows the answer")

    monkeypatch.setattr(model_map, "_load", refuse)


def test_a_lookup_is_remembered_and_the_next_start_reads_the_memo(cold, monkeypatch):
    entry = model_map.lookup("gpt-4o")
    assert entry and entry["max_input_tokens"] > 0
    assert model_map.lookup("no-such/model-anywhere") is None
    memo = json.loads((data_dir() / "cache" / model_map.MEMO_FILE).read_text())
    assert memo["source"] == model_map._source()
    next_start(monkeypatch)
    _no_map(monkeypatch)
    assert model_map.lookup("gpt-4o") == entry
    assert model_map.lookup("no-such/model-anywhere") is None


def test_a_memo_of_another_map_file_or_a_broken_one_is_not_trusted(cold, monkeypatch):
    path = data_dir() / "cache" / model_map.MEMO_FILE
    path.parent.mkdir(parents=True)
    fake = {"max_input_tokens": 1, "input_cost_per_token": 9.0}
    for content in (json.dumps({"source": ["/elsewhere.json", 1, 1], "found": {"gpt-4o": fake}}), "{broken"):
        path.write_text(content)
        next_start(monkeypatch)
        assert model_map.lookup("gpt-4o")["max_input_tokens"] > 1
        assert json.loads(path.read_text())["source"] == model_map._source()


def test_a_memo_that_cannot_be_written_only_means_reading_the_map(cold, monkeypatch):
    (data_dir() / "cache").parent.mkdir(parents=True, exist_ok=True)
    (data_dir() / "cache").write_text("a file where the cache folder would go")
    assert model_map.lookup("gpt-4o")["max_input_tokens"] > 0


def test_the_memo_starts_over_when_full(cold, monkeypatch):
    monkeypatch.setattr(model_map, "MEMO_MAX", 3)
    for i in range(5):
        model_map.lookup(f"no-such/model-{i}")
    memo = json.loads((data_dir() / "cache" / model_map.MEMO_FILE).read_text())
    assert len(memo["found"]) <= 3 and "no-such/model-4" in memo["found"]
