"""Tools the agent can call. ``default_tools()`` is the built-in local set."""

from __future__ import annotations

from agent.tools.base import Tool


def default_tools(*, sandbox: bool = False) -> list[Tool]:
    """Fresh instances of the built-in tools, in the order the model sees them. The sandbox
    tools are offered only when a sandbox can exist (an HF token, online): five tools the
    model cannot use would only cost prompt tokens."""
    # imported here so that importing agent.tools.base never drags in every tool module;
    # the tool modules themselves import their heavy helpers (httpx, bs4, markdownify,
    # huggingface_hub) inside the calls that need them
    from agent.tools.datasets import HfInspectDatasetTool
    from agent.tools.docs import ExploreHfDocsTool, FetchHfDocsTool
    from agent.tools.edit import EditTool
    from agent.tools.files import ReadTool, WriteTool
    from agent.tools.github import GithubFindExamplesTool, GithubListReposTool, GithubReadFileTool
    from agent.tools.hf_api import FindHfApiTool
    from agent.tools.hub_repo import HfRepoFilesTool, HfRepoGitTool
    from agent.tools.jobs import HfJobsTool
    from agent.tools.papers import HfPapersTool
    from agent.tools.plan import PlanTool
    from agent.tools.research import ResearchTool
    from agent.tools.shell import BashTool
    from agent.tools.web import FetchUrlTool, WebSearchTool

    # the reference's order (§2): runtime, research, knowledge, plan, jobs, Hub writes, GitHub, API
    tools: list[Tool] = [
        BashTool(), ReadTool(), WriteTool(), EditTool(),
        ResearchTool(), ExploreHfDocsTool(), FetchHfDocsTool(), HfPapersTool(), WebSearchTool(), FetchUrlTool(),
        HfInspectDatasetTool(), PlanTool(), HfJobsTool(), HfRepoFilesTool(), HfRepoGitTool(),
        GithubFindExamplesTool(), GithubListReposTool(), GithubReadFileTool(), FindHfApiTool(),
    ]
    if sandbox:
        from agent.tools.sandbox import sandbox_tools

        tools += sandbox_tools()
    return tools


__all__ = ["Tool", "default_tools"]
