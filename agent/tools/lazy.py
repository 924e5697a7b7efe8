"""Built-in tools known by name and schema before their modules are imported.

A session offers about twenty tools, and importing their modules (with their pydantic
parameter models) and generating their JSON schemas took ~75 ms of the ~140 ms a session
took to build: time on the way to "ready" for tools most turns never call. Here each
built-in tool is a ``LazyTool``: its schema comes from a cache file, and its module is
imported the first time the router hands the tool a call (``ToolRouter.get``).

The cache (``tool-specs.json`` in the data directory's ``cache`` folder) is keyed by a
fingerprint of every file of the ``agent`` package (path, size, mtime) plus the versions of
Python, pydantic and this package: an edited or upgraded tool, or a different pydantic,
makes it miss, and a miss loads every tool and writes the cache again (what every start did
before). A cache that cannot be read or written is only a slower start.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from agent.cache_files import read_json, write_json

if TYPE_CHECKING:
    from agent.tools.base import Tool

#: the built-in tools in the order the model sees them (the reference's §2 order: runtime,
#: research, knowledge, plan, jobs, Hub writes, GitHub, API): (name, module, class)
BUILTIN: tuple[tuple[str, str, str], ...] = (
    ("bash", "agent.tools.shell", "BashTool"),
    ("read", "agent.tools.files", "ReadTool"),
    ("write", "agent.tools.files", "WriteTool"),
    ("edit", "agent.tools.edit", "EditTool"),
    ("research", "agent.tools.research", "ResearchTool"),
    ("explore_hf_docs", "agent.tools.docs", "ExploreHfDocsTool"),
    ("fetch_hf_docs", "agent.tools.docs", "FetchHfDocsTool"),
    ("hf_papers", "agent.tools.papers", "HfPapersTool"),
    ("web_search", "agent.tools.web", "WebSearchTool"),
    ("fetch_url", "agent.tools.web_fetch", "FetchUrlTool"),
    ("hf_inspect_dataset", "agent.tools.datasets", "HfInspectDatasetTool"),
    ("plan_tool", "agent.tools.plan", "PlanTool"),
    ("hf_jobs", "agent.tools.jobs", "HfJobsTool"),
    ("hf_repo_files", "agent.tools.hub_repo", "HfRepoFilesTool"),
    ("hf_repo_git", "agent.tools.hub_git", "HfRepoGitTool"),
    ("github_find_examples", "agent.tools.github", "GithubFindExamplesTool"),
    ("github_list_repos", "agent.tools.github", "GithubListReposTool"),
    ("github_read_file", "agent.tools.github_read", "GithubReadFileTool"),
    ("find_hf_api", "agent.tools.hf_api", "FindHfApiTool"),
)
#: offered only when a sandbox can exist (an HF token, online)
SANDBOX: tuple[tuple[str, str, str], ...] = (
    ("sandbox_create", "agent.tools.sandbox", "SandboxCreateTool"),
    ("sandbox_bash", "agent.tools.sandbox", "SandboxBashTool"),
    ("sandbox_read", "agent.tools.sandbox", "SandboxReadTool"),
    ("sandbox_write", "agent.tools.sandbox", "SandboxWriteTool"),
    ("sandbox_edit", "agent.tools.sandbox", "SandboxEditTool"),
)
CACHE_FILE = "tool-specs.json"


class ToolLoadError(Exception):
    """A built-in tool's module could not be imported or its class built."""


class LazyTool:
    """A built-in tool by name and schema; ``load()`` imports and builds the real one."""

    def __init__(self, name: str, module: str, class_name: str, spec: dict[str, Any] | None = None):
        self.name = name
        self.module = module
        self.class_name = class_name
        self._spec = spec
        #: run on the tool once it is built (a session's settings for it)
        self.on_load: list[Callable[[Tool], None]] = []

    def __repr__(self) -> str:
        return f"LazyTool({self.name!r}, {self.module}.{self.class_name})"

    def build(self) -> Tool:
        """The real tool, fresh; ToolLoadError says why it cannot be had."""
        try:
            cls = getattr(importlib.import_module(self.module), self.class_name)
            tool = cls()
        except Exception as exc:  # a broken install, a syntax error in an edited tool
            raise ToolLoadError(f"the {self.name} tool could not be loaded "
                                f"({self.module}.{self.class_name}): {type(exc).__name__}: {exc}") from exc
        if tool.name != self.name:
            raise ToolLoadError(f"{self.module}.{self.class_name} is named {tool.name!r}, "
                                f"not {self.name!r} as agent/tools/lazy.py lists it")
        return tool

    def load(self) -> Tool:
        tool = self.build()
        for hook in self.on_load:
            hook(tool)
        return tool

    def spec(self) -> dict[str, Any]:
        if self._spec is None:
            from agent.tools.router import tool_spec

            self._spec = tool_spec(self.build())
        return self._spec


def builtin_tools(*, sandbox: bool = False, cache_dir: Path | None = None) -> list[LazyTool]:
    """The built-in tools as ``LazyTool``s with their schemas (from the cache when it is current)."""
    entries = BUILTIN + (SANDBOX if sandbox else ())
    specs = cached_specs(cache_dir)
    return [LazyTool(name, module, cls, specs.get(name)) for name, module, cls in entries]


# ------------------------------------------------------------------ the schema cache

#: this process's schemas as JSON text (the package does not change under it); each caller gets
#: its own parsed copy (~0.3 ms), so nothing one session does to a schema reaches another
_memo: str | None = None


def fingerprint() -> str:
    """What the schemas depend on: every file of the ``agent`` package, Python's version and
    pydantic's (its ``version.py`` as installed: asked before the first frame, which does not
    import pydantic)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"{sys.version}|{library_stamp('pydantic', 'version.py')}|{root}".encode())
    tree_stamp(root, digest)
    return digest.hexdigest()


def library_stamp(name: str, file: str | None = None) -> str:
    """An installed library's version without importing it (importlib.metadata is ~10 ms): the
    size and time of its package file, or of ``file`` beside it; "?" when it cannot be found."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
        origin = spec.origin  # type: ignore[union-attr]
        st = os.stat(Path(origin).with_name(file) if file else origin)  # type: ignore[arg-type]
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        return "?"
    return f"{origin}|{st.st_size}|{st.st_mtime_ns}"


def tree_stamp(root: Path, digest: Any) -> None:
    """Every file under ``root`` (compiled files aside), by name, size and modification time,
    into ``digest``: a change to any of them changes the digest."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            digest.update(f"{os.path.relpath(os.path.join(folder, name), root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())


_fingerprint: str | None = None


def fingerprint_once() -> str:
    """``fingerprint()`` as this process first saw it (~2 ms; asked twice before the app's first
    frame: here, and for the config file's early settings)."""
    global _fingerprint
    if _fingerprint is None:
        _fingerprint = fingerprint()
    return _fingerprint


def all_specs() -> dict[str, dict[str, Any]]:
    """Every built-in tool's schema, by building every tool (the slow way: imports them all)."""
    from agent.tools.router import tool_spec

    return {name: tool_spec(LazyTool(name, module, cls).build()) for name, module, cls in BUILTIN + SANDBOX}


def cached_specs(cache_dir: Path | None) -> dict[str, dict[str, Any]]:
    """The schemas by tool name: this process's, the cache file's when it is current, or built
    and written there. Never raises for the cache: an unreadable one is rebuilt."""
    global _memo
    if _memo is None:
        _memo = json.dumps(_current_specs(cache_dir))
    return json.loads(_memo)


def load_cached(cache_dir: Path) -> bool:
    """Whether the cache file holds this package's schemas; if it does they become this
    process's, and ``cached_specs`` does not read the file again. ~2.5 ms: the app asks before
    its first frame whether building the session will import every tool (a new install or
    version: ~0.25 s), and shows the model as loading until it has."""
    global _memo
    if _memo is None:
        specs = _cached_file(cache_dir / CACHE_FILE, fingerprint_once())
        if specs is None:
            return False
        _memo = json.dumps(specs)
    return True


def _cached_file(path: Path, key: str) -> dict[str, dict[str, Any]] | None:
    data = read_json(path)
    if (isinstance(data, dict) and data.get("key") == key and isinstance(data.get("specs"), dict)
            and all(isinstance(data["specs"].get(name), dict) for name, _, _ in BUILTIN + SANDBOX)):
        return data["specs"]
    return None


def _current_specs(cache_dir: Path | None) -> dict[str, dict[str, Any]]:
    if cache_dir is None:
        return all_specs()
    path = cache_dir / CACHE_FILE
    key = fingerprint()
    specs = _cached_file(path, key)
    if specs is not None:
        return specs
    specs = all_specs()
    write_json(path, {"key": key, "specs": specs})  # unwritten (read-only, full): built again next start
    return specs


def forget_memo() -> None:
    """Drop this process's schemas (tests that edit the cache file)."""
    global _memo
    _memo = None
