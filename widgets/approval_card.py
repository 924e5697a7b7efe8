"""What one approval request shows: the facts that matter for its tool."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from agent.protocol import ApprovalItem
from widgets.hub_write_review import HubWriteReviewView

#: the engine's budget-pause item (``agent.loop.BUDGET_TOOL``; not imported: the loop pulls in litellm)
BUDGET_TOOL = "yolo_budget"


def detail_rows(item: ApprovalItem) -> list[tuple[str, str]]:
    """(label, value) pairs for the card, chosen per tool; the rest of the arguments follow."""
    a: dict[str, Any] = item.arguments
    if item.tool == BUDGET_TOOL:
        return budget_rows(a)
    rows: list[tuple[str, str]] = []
    shown: set[str] = set()

    def row(label: str, key: str, fmt=str) -> None:
        if key in a and a[key] not in (None, "", [], {}):
            rows.append((label, fmt(a[key])))
            shown.add(key)

    if item.tool == "bash":
        row("command", "command")
        row("in", "work_dir")
        row("timeout", "timeout", lambda v: f"{v} s")
    elif item.tool in ("write", "edit"):
        row("file", "path")
        if item.tool == "write" and isinstance(a.get("content"), str):
            text = a["content"]
            rows.append(("size", f"{len(text.encode()):,} bytes, {text.count(chr(10)) + 1} lines"))
            shown.add("content")
        row("replace", "old_str")
        row("with", "new_str")
    elif item.tool == "hf_jobs":
        row("operation", "operation")
        row("hardware", "hardware_flavor")
        row("timeout", "timeout")
        row("image", "image")
        row("command", "command", lambda v: " ".join(v) if isinstance(v, list) else str(v))
        row("schedule", "schedule")
        row("dependencies", "dependencies", lambda v: ", ".join(v) if isinstance(v, list) else str(v))
        row("env", "env", lambda v: ", ".join(sorted(v)) if isinstance(v, dict) else str(v))
        row("script", "script")
    elif item.tool == "sandbox_create":
        hardware = a.get("hardware") or "cpu-basic"
        rows.append(("hardware", str(hardware)))
        shown.update(("hardware", "store_hf_token"))
        if hardware != "cpu-basic" or a.get("store_hf_token"):
            rows.append(("HF token", "stored as the secret HF_TOKEN in the private Space; code in the sandbox can read it"))
    elif item.tool == "sandbox_bash":
        row("command", "command")
        row("in", "work_dir")
    elif item.tool in ("sandbox_write", "sandbox_edit", "sandbox_read"):
        row("file", "path")
    elif item.tool in ("hf_repo_files", "hf_repo_git"):
        for label, key in (("operation", "operation"), ("repo", "repo_id"), ("type", "repo_type"), ("path", "path"),
                           ("branch", "branch"), ("tag", "tag"), ("revision", "revision"), ("PR", "pr_num"),
                           ("patterns", "patterns")):
            row(label, key)
        if isinstance(a.get("content"), str):
            rows.append(("size", f"{len(a['content'].encode()):,} bytes"))
            shown.add("content")
    if item.estimated_cost_usd is not None:
        basis = {"hf_jobs": " at most (hourly price × timeout)", "sandbox_create": " for the first hour"}
        if item.estimated_cost_usd == 0 and item.tool == "hf_jobs":
            rows.append(("estimate", "$0 (runs on this machine's CPU)"))
        else:
            rows.append(("estimate", f"${item.estimated_cost_usd:.2f}{basis.get(item.tool, '')}"))
    rest = {k: v for k, v in a.items() if k not in shown}
    if rest:
        rows.append(("arguments", json.dumps(rest, indent=2, ensure_ascii=False)))
    return rows


def budget_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    def money(key: str) -> str:
        value = a.get(key)
        return f"${float(value):.2f}" if isinstance(value, (int, float)) else "?"

    return [("spent", f"{money('spent_usd')} (model calls and compute)"), ("cap", money("cap_usd")),
            ("new cap", money("new_cap_usd"))]


class ApprovalCard(Widget):
    DEFAULT_CSS = """
    ApprovalCard { height: auto; max-height: 100%; }
    ApprovalCard > .approval-title { text-style: bold; }
    ApprovalCard > .approval-reason { color: $warning; margin: 0 0 1 0; }
    ApprovalCard > VerticalScroll { height: auto; max-height: 20; }
    ApprovalCard.-review > VerticalScroll { max-height: 22; }
    ApprovalCard .approval-row { height: auto; }
    ApprovalCard .approval-label { width: 14; color: $text-muted; text-style: bold; text-align: right; padding: 0 1 0 0; }
    ApprovalCard .approval-value { width: 1fr; }
    ApprovalCard > .approval-always { margin: 1 0 0 0; color: $accent; }
    """

    def __init__(self, item: ApprovalItem, position: int, total: int, **kwargs):
        super().__init__(**kwargs)
        self.item = item
        self.position = position
        self.total = total

    def compose(self) -> ComposeResult:
        if self.item.tool == BUDGET_TOOL:
            title = Content("Raise the YOLO budget?")
        else:
            title = Content.from_markup("Approval [b $accent]$k of $n[/] · [b]$tool[/]",
                                        k=str(self.position), n=str(self.total), tool=self.item.tool)
        yield Static(title, classes="approval-title")
        # the engine's reason for a budget pause speaks of editing JSON; the rows say it here
        reason = ("The session has spent its YOLO budget: the agent is paused before its next model call."
                  if self.item.tool == BUDGET_TOOL else self.item.reason)
        if reason:
            yield Static(Content(reason), classes="approval-reason")
        if self.item.review is not None:
            self.add_class("-review")
        with VerticalScroll():
            if self.item.review is not None:
                # what the Hub write changes first; the raw arguments follow
                yield HubWriteReviewView(self.item.review)
            for label, value in detail_rows(self.item):
                with Horizontal(classes="approval-row"):
                    yield Static(Content(label), classes="approval-label")
                    yield Static(Content(value), classes="approval-value")
        rule = self.item.suggested_rule
        if rule is not None and self.item.tool != BUDGET_TOOL:
            # the exact scope "always" would save, before any key is pressed
            yield Static(Content.from_markup("[b]Always[/] (A allow · D deny) would cover: [b]$scope[/]",
                                             scope=rule.label), classes="approval-always")
