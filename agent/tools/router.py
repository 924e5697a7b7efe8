"""The tool router: schemas for the model, argument checking, isolated execution.

Schemas are generated from each tool's pydantic ``Params`` model, with ``$defs`` inlined
(several providers reject ``$ref``). Arguments are parsed once; a malformed or invalid call
becomes an error result that says it was NOT executed and why, so the model can fix it.

A router with a ``policy`` (every session's router) is *governed*: ``execute`` runs a call
only with an allow decision that policy issued for that exact call (``agent.policy``), or,
when the caller brings none, one the policy makes on the spot - so a gated call can never
run without a human's approval, a rule or a YOLO decision within budget, whoever calls.
A router built without a policy runs nothing until one is attached (the engine attaches
its own), unless it was built ``ungoverned=True``: an explicit opt-out for harnesses that
play the engine and the user themselves (tests, the demo's self-check), never for a session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from pydantic import ValidationError

from agent.encodable import encodable, encodable_value
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolResult
from agent.tools.lazy import LazyTool, ToolLoadError
from agent.tools.output import apply_output_budget

if TYPE_CHECKING:
    from agent.policy import Decision, Policy

log = logging.getLogger(__name__)

MALFORMED_PREFIX = "ERROR: Tool call to '{name}' had malformed JSON arguments and was NOT executed."
#: arguments deeper or bigger than this are refused (a hostile or broken reply must not reach
#: the serialisers, the store or the screen)
MAX_ARGUMENT_DEPTH = 64
MAX_ARGUMENT_CHARS = 4_000_000


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (stops counting past ``limit``); iterative, so it cannot overflow."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def resolve(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            if in_properties:  # keys here are parameter names (a parameter may be called "title")
                return {k: resolve(v) for k, v in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = dict(defs[ref.split("/")[-1]])
                extra = {k: v for k, v in node.items() if k != "$ref"}
                target.update(extra)
                return resolve(target)
            return {k: resolve(v, in_properties=(k == "properties")) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _compact_optional(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's ``anyOf: [X, {"type": "null"}], "default": null`` becomes X:
    leaving it out already means "none", and the null branch costs every request ~25 tokens
    per parameter (about a fifth of the tool schemas)."""
    for name, prop in list(schema.get("properties", {}).items()):
        options = prop.get("anyOf")
        if (isinstance(options, list) and len(options) == 2 and {"type": "null"} in options
                and prop.get("default", None) is None and name not in schema.get("required", [])):
            kept = dict(next(o for o in options if o != {"type": "null"}))
            kept.update({k: v for k, v in prop.items() if k not in ("anyOf", "default")})
            schema["properties"][name] = kept
    return schema


def tool_spec(tool: Tool) -> dict[str, Any]:
    own = getattr(tool, "spec", None)
    if callable(own):  # a tool whose schema comes from elsewhere (an MCP server's)
        return own()
    params = _compact_optional(_inline_refs(tool.Params.model_json_schema()))
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    params["additionalProperties"] = False
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": params},
    }


@dataclass
class ParsedCall:
    """A tool call from the model, checked against its tool.

    ``error`` is set when the call must not run; ``malformed`` marks JSON that did not parse
    (that is what the repeated-malformed guard counts).
    """

    id: str
    name: str
    raw_arguments: str
    arguments: dict[str, Any]
    tool: Tool | None = None
    params: Any = None
    error: str | None = None
    malformed: bool = False


UNGOVERNED_REFUSAL = ("ERROR: {name} was NOT executed: this tool router has no approval policy "
                      "(build it with a Policy, or ungoverned=True in a test harness).")


class ToolRouter:
    """The tools of a session or a sub-agent by name. A ``LazyTool`` among them is built the
    first time it is needed (``get``, or a call to it): its schema is known before."""

    def __init__(self, tools: list[Tool | LazyTool], *, policy: Policy | None = None, ungoverned: bool = False):
        if policy is not None and ungoverned:
            raise ValueError("a router is either governed by a policy or explicitly ungoverned, not both")
        self.policy = policy
        #: runs every call without asking anyone: only for harnesses that decide themselves
        self.ungoverned = ungoverned
        self._tools: dict[str, Tool | LazyTool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name {tool.name!r}")
            self._tools[tool.name] = tool
        self._specs = [tool_spec(t) for t in self._tools.values()]
        #: names of the tools added with ``set_extra`` (MCP servers' tools), which come and go
        self._extra: set[str] = set()
        #: masks the user's secret values in every result (the session's ``SecretMasker``)
        self.mask: Callable[[str], str] = lambda text: text

    def set_extra(self, tools: list[Tool]) -> None:
        """Replace the tools that come from outside (MCP servers). Built-in tools keep their
        names: an extra tool with a taken name is refused."""
        for name in self._extra:
            self._tools.pop(name, None)
        self._extra = set()
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool name {tool.name!r} is taken")
            self._tools[tool.name] = tool
            self._extra.add(tool.name)
        self._specs = [tool_spec(t) for t in self._tools.values()]

    @property
    def extra_names(self) -> list[str]:
        return [n for n in self._tools if n in self._extra]

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool with this name, built now if it was not yet; None if there is none (or it
        cannot be built: a call to it says why)."""
        try:
            return self._built(name)
        except ToolLoadError:
            log.exception("tool %s could not be loaded", name)
            return None

    def _built(self, name: str) -> Tool | None:
        tool = self._tools.get(name)
        if isinstance(tool, LazyTool):
            tool = self._tools[name] = tool.load()
        return tool

    def when_loaded(self, name: str, hook: Callable[[Tool], None]) -> None:
        """Run ``hook`` on the tool called ``name`` once it is built (now, if it is)."""
        tool = self._tools.get(name)
        if isinstance(tool, LazyTool):
            tool.on_load.append(hook)
        elif tool is not None:
            hook(tool)

    def specs(self) -> list[dict[str, Any]]:
        return self._specs

    def parse(self, call_id: str, name: str, raw_arguments: str | None) -> ParsedCall:
        # a lone surrogate in the model's JSON ("\ud800") would fail wherever the call is encoded
        # (its digest, a bash command, a file's content): text is text (agent/encodable.py)
        call_id, name = encodable(call_id), encodable(name)
        raw = encodable(raw_arguments) if raw_arguments is not None else ""
        try:
            tool = self._built(name)
        except ToolLoadError as exc:
            return ParsedCall(call_id, name, raw, {}, error=f"ERROR: {exc}. The call was NOT executed.")
        if tool is None:
            available = ", ".join(sorted(self._tools)) or "(none)"
            return ParsedCall(
                call_id, name, raw, {},
                error=f"ERROR: Unknown tool '{name}'. The call was NOT executed. Available tools: {available}.",
            )
        if len(raw) > MAX_ARGUMENT_CHARS:
            return ParsedCall(
                call_id, name, raw[:200], {}, tool=tool, malformed=True,
                error=MALFORMED_PREFIX.format(name=name) + f" The arguments are {len(raw):,} characters, over the "
                f"{MAX_ARGUMENT_CHARS:,} limit; write big content to a file in smaller pieces.",
            )
        try:
            args = json.loads(raw) if raw.strip() else {}
        except RecursionError:
            args = None
        except json.JSONDecodeError as exc:
            return ParsedCall(
                call_id, name, raw, {}, tool=tool, malformed=True,
                error=(
                    MALFORMED_PREFIX.format(name=name)
                    + f" JSON error: {exc.msg} at line {exc.lineno} column {exc.colno}."
                    " Send the arguments again as one valid JSON object."
                ),
            )
        if args is None or (isinstance(args, dict) and _depth(args, MAX_ARGUMENT_DEPTH) > MAX_ARGUMENT_DEPTH):
            return ParsedCall(
                call_id, name, raw[:200], {}, tool=tool, malformed=True,
                error=MALFORMED_PREFIX.format(name=name) + f" The arguments nest more than {MAX_ARGUMENT_DEPTH} "
                "levels deep; send a flat object.",
            )
        if not isinstance(args, dict):
            return ParsedCall(
                call_id, name, raw, {}, tool=tool, malformed=True,
                error=MALFORMED_PREFIX.format(name=name)
                + f" Expected a JSON object, got {type(args).__name__}.",
            )
        args = encodable_value(args)
        try:
            params = tool.Params.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in exc.errors()[:8]
            )
            return ParsedCall(
                call_id, name, raw, args, tool=tool,
                error=f"ERROR: Tool call to '{name}' had invalid arguments and was NOT executed: {problems}.",
            )
        return ParsedCall(call_id, name, raw, args, tool=tool, params=params)

    def approval_reason(self, call: ParsedCall, settings: ApprovalSettings) -> str | None:
        if call.error or call.tool is None:
            return None
        return call.tool.approval_reason(call.params, settings)

    def always_ask(self, call: ParsedCall) -> bool:
        return bool(call.tool is not None and not call.error and call.tool.always_ask(call.params))

    def estimate(self, call: ParsedCall) -> float | None:
        if call.error or call.tool is None:
            return None
        return call.tool.estimate(call.params)

    async def execute(self, call: ParsedCall, ctx: ToolContext, decision: Decision | None = None) -> ToolResult:
        """Run one checked call. Never raises except ``CancelledError``. On a governed router
        the call runs only if ``decision`` (or the policy's own, when None) allows it."""
        if call.error or call.tool is None:
            return ToolResult(call.error or "ERROR: call was NOT executed.", success=False)
        if self._tools.get(call.name) is not call.tool:
            # the policy judged the tool this name stands for here; run nothing else under it
            return ToolResult(f"ERROR: {call.name} was NOT executed: the call was not parsed by this router.",
                              success=False)
        policy = self.policy
        if policy is None and not self.ungoverned:
            return ToolResult(UNGOVERNED_REFUSAL.format(name=call.name), success=False)
        if policy is not None:
            if decision is None:
                decision = policy.decide(call)
            refusal = policy.admit(call, decision)
            if refusal is not None:
                return ToolResult(refusal, success=False)
        result: ToolResult | None = None
        try:
            result = await call.tool.run(call.params, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one failing tool is one error result
            log.exception("tool %s failed", call.name)
            result = ToolResult(f"ERROR: {call.name} failed: {type(exc).__name__}: {exc}", success=False)
        finally:
            if policy is not None and decision is not None:
                policy.finish(call, decision, result)  # release, track or settle its budget reservation
        result = ToolResult(self.mask(encodable(result.output)), result.success, result.spill_path)
        if result.spill_path is None:
            text, spill = apply_output_budget(result.output, ctx.spill_dir, label=call.name)
            result = ToolResult(text, result.success, spill)
        return result
