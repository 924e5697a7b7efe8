"""An MCP server's tool as one of the agent's tools.

Its parameters are the server's JSON schema, checked here at the top level (required keys,
unknown keys when the schema forbids them, the basic types) so a bad call is an error the model
can fix, not a round trip to the server. Every call goes through the session's policy: a server
with ``approval: ask`` (every third-party server unless the user says ``auto``) asks, naming the
server; Hugging Face's own server runs the tools it marks read-only on its own and asks for the
rest.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict, model_validator

from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult

if TYPE_CHECKING:
    from agent.mcp.manager import McpManager

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}
_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")


def safe_name(name: str) -> str:
    """A tool name providers accept (``^[A-Za-z0-9_-]{1,64}$``)."""
    return (_NAME_OK.sub("_", name) or "tool")[:64]


def check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> list[str]:
    problems = []
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    for key in schema.get("required") or []:
        if key not in args:
            problems.append(f"{key}: required")
    if schema.get("additionalProperties") is False:
        problems += [f"{key}: not a parameter of this tool" for key in args if key not in props]
    for key, value in args.items():
        spec = props.get(key)
        kinds = spec.get("type") if isinstance(spec, dict) else None
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not kinds:
            continue
        allowed = tuple(t for k in kinds for t in _TYPES.get(k, (object,)))
        bad_bool = isinstance(value, bool) and "boolean" not in kinds
        if not isinstance(value, allowed) or bad_bool:
            problems.append(f"{key}: expected {' or '.join(kinds)}, got {type(value).__name__}")
    return problems


class McpParams(ToolParams):
    """Any object; checked against the server's schema by the subclass made per tool."""

    model_config = ConfigDict(extra="allow")
    schema_: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _against_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("arguments must be an object")
        problems = check_arguments(cls.schema_, data)
        if problems:
            raise ValueError("; ".join(problems[:8]))
        return data


class McpTool(Tool):
    origin = "mcp"

    def __init__(self, manager: McpManager, server: str, definition: Any, name: str):
        self.manager = manager
        self.server = server
        self.remote_name: str = definition.name
        self.name = name  # type: ignore[misc]
        schema = definition.input_schema if isinstance(getattr(definition, "input_schema", None), dict) else {}
        self.input_schema: dict[str, Any] = {"type": "object", "properties": {}, **schema}
        annotations = getattr(definition, "annotations", None)
        self.read_only = bool(getattr(annotations, "read_only_hint", False))
        about = (definition.description or getattr(definition, "title", None) or "").strip()
        self.description = f"[MCP server {server}] {about}".strip()  # type: ignore[misc]
        self.Params = type(f"Params_{safe_name(name)}", (McpParams,), {"schema_": self.input_schema})  # type: ignore[misc]

    def spec(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description[:1024],
                                                 "parameters": self.input_schema}}

    def approval_reason(self, params: Any, settings: ApprovalSettings) -> str | None:
        entry = self.manager.entry(self.server)
        if entry is None:
            return None
        if entry.approval == "auto" and (not entry.is_hf or self.read_only):
            return None
        who = "Hugging Face's MCP server" if entry.is_hf else f"MCP server '{self.server}' ({entry.origin} config)"
        if entry.is_hf:
            return f"{who}: {self.remote_name} is not marked read-only, so it may change things on the Hub"
        return f"{who}: {self.remote_name} runs there, and what it changes is not known here"

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        args = params.model_dump() if hasattr(params, "model_dump") else dict(params or {})
        return await self.manager.call(self.server, self.remote_name, args, ctx)
