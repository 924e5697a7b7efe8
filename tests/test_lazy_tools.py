"""Built-in tools by name and schema, imported on first use (agent/tools/lazy.py), and the
schema cache that lets a start skip importing them (issue 17)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent.tools import default_tools
from agent.tools import lazy
from agent.tools.base import ApprovalSettings
from agent.tools.lazy import BUILTIN, CACHE_FILE, SANDBOX, LazyTool, builtin_tools, cached_specs
from agent.tools.router import ToolRouter, tool_spec


@pytest.fixture(autouse=True)
def fresh_memo():
    lazy.forget_memo()
    yield
    lazy.forget_memo()


def test_the_table_names_every_tool_as_its_class_does_and_the_cache_gives_their_schemas(tmp_path):
    built = default_tools(sandbox=True)
    assert [t.name for t in built] == [name for name, _, _ in BUILTIN + SANDBOX]
    listed = builtin_tools(sandbox=True, cache_dir=tmp_path)
    assert [t.name for t in listed] == [t.name for t in built]
    assert [t.spec() for t in listed] == [tool_spec(t) for t in built]
    # and what a later start reads back from the file is the same
    lazy.forget_memo()
    again = builtin_tools(sandbox=True, cache_dir=tmp_path)
    assert [t.spec() for t in again] == [tool_spec(t) for t in built]
    assert [t.name for t in builtin_tools(cache_dir=tmp_path)] == [name for name, _, _ in BUILTIN]


def test_a_current_cache_is_read_without_building_any_tool(tmp_path, monkeypatch):
    specs = cached_specs(tmp_path)
    assert (tmp_path / CACHE_FILE).is_file()
    lazy.forget_memo()

    def refuse():
        raise AssertionError("the tools were built although the cache is current")

    monkeypatch.setattr(lazy, "all_specs", refuse)
    assert cached_specs(tmp_path) == specs


def test_a_cache_of_other_sources_or_a_broken_one_is_rebuilt(tmp_path):
    path = tmp_path / CACHE_FILE
    good = cached_specs(tmp_path)
    key = json.loads(path.read_text())["key"]
    stale = {"key": "0" * 64, "specs": {name: {"type": "function", "function": {"name": name, "description": "old"}}
                                         for name, _, _ in BUILTIN + SANDBOX}}
    for content in (json.dumps(stale), "{not json", json.dumps({"key": key, "specs": {"bash": {}}}), ""):
        path.write_text(content)
        lazy.forget_memo()
        assert cached_specs(tmp_path) == good, content[:40]
        assert json.loads(path.read_text())["key"] == key


def test_editing_a_file_of_the_agent_package_changes_the_key(tmp_path):
    before = lazy.fingerprint()
    probe = Path(lazy.__file__)
    st = probe.stat()
    try:
        os.utime(probe, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert lazy.fingerprint() != before
    finally:
        os.utime(probe, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert lazy.fingerprint() == before


def test_a_cache_that_cannot_be_written_is_only_a_slower_start(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would go")
    specs = cached_specs(blocker / "cache")
    assert set(specs) == {name for name, _, _ in BUILTIN + SANDBOX}


def test_sessions_never_share_a_schema_object(tmp_path):
    one, two = builtin_tools(cache_dir=tmp_path), builtin_tools(cache_dir=tmp_path)
    one[0].spec()["function"]["description"] = "changed by one session"
    assert two[0].spec()["function"]["description"] != "changed by one session"
    assert builtin_tools(cache_dir=tmp_path)[0].spec() == two[0].spec()


def test_a_tool_is_built_when_first_called_and_its_hooks_run_then(tmp_path):
    router = ToolRouter(builtin_tools(cache_dir=tmp_path), ungoverned=True)
    assert isinstance(router._tools["hf_jobs"], LazyTool)
    seen = []
    router.when_loaded("hf_jobs", lambda tool: seen.append(tool))
    assert seen == []
    call = router.parse("c1", "hf_jobs", json.dumps({"operation": "ps"}))
    assert call.error is None and call.tool is not None and seen == [call.tool]
    assert router.get("hf_jobs") is call.tool  # built once
    # a hook for a tool already built runs at once
    router.when_loaded("hf_jobs", lambda tool: seen.append("again"))
    assert seen == [call.tool, "again"]
    assert call.tool.approval_reason(call.params, ApprovalSettings()) is None  # a real HfJobsTool


def test_a_tool_whose_module_cannot_be_loaded_is_an_error_result_not_a_crash(tmp_path):
    broken = LazyTool("ghost", "agent.tools.no_such_module", "GhostTool",
                      spec={"type": "function", "function": {"name": "ghost", "description": "x", "parameters": {}}})
    misnamed = LazyTool("not_bash", "agent.tools.shell", "BashTool",
                        spec={"type": "function", "function": {"name": "not_bash", "description": "x", "parameters": {}}})
    router = ToolRouter([broken, misnamed], ungoverned=True)
    assert [s["function"]["name"] for s in router.specs()] == ["ghost", "not_bash"]
    call = router.parse("c1", "ghost", "{}")
    assert call.tool is None and "could not be loaded" in call.error and "NOT executed" in call.error
    assert "agent.tools.no_such_module" in call.error
    call = router.parse("c2", "not_bash", "{}")
    assert call.tool is None and "'bash'" in call.error and "NOT executed" in call.error
    assert router.get("ghost") is None
