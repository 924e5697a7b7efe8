"""The Hub gateway's questions answered by the session's one policy (issue 11).

A process the agent started (``bash``, a local job) reaches the Hub only through the gateway
(agent/hub_gateway.py), with a stand-in token labelled with the call that started it. Every
request that spends money or writes comes here before it is forwarded, and is decided like
the agent's own tool calls:

* job creation is judged as an ``hf_jobs run`` with the job's hardware and timeout (the
  same price estimate, the same YOLO reservation, the same rules);
* a commit as an ``hf_repo_files upload`` to its repo (the card shows the file list the
  commit carries), repo creation, settings, branch/tag deletion and PR merges as the matching
  ``hf_repo_git`` operations;
* anything else that writes (Space hardware or secrets, repo deletion, an unknown route)
  always asks a human: nothing the policy cannot judge is allowed on its own, YOLO or not.

A call that asks goes to the user's approval queue, tagged with the call of the process that
made it (the card says "bash: python train.py wants to ..."); headless, it is refused like
any other. A refusal is a 403 whose sentence the script prints.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from agent.hub_gateway import GatewayRequest, GatewayVerdict
from agent.hub_gateway_routes import RouteKind
from agent.protocol import ApprovalItem, HubWriteFile, HubWriteReview, ToolDecision

if TYPE_CHECKING:
    from agent.policy import Decision, Policy
    from agent.tools.router import ParsedCall, ToolRouter

log = logging.getLogger(__name__)

#: (call id of the process, the process in words) for a stand-in's label
Caller = tuple[str, str]
AskUser = Callable[[list[ApprovalItem], str], Awaitable[list[ToolDecision]]]

_GIT_OPERATIONS = {
    RouteKind.REPO_CREATE: "create_repo", RouteKind.REPO_SETTINGS: "update_repo",
    RouteKind.BRANCH_DELETE: "delete_branch", RouteKind.TAG_DELETE: "delete_tag", RouteKind.PR_MERGE: "merge_pr",
}
#: writes that change nothing of value and cost nothing: no question
_HARMLESS = frozenset({RouteKind.BRANCH_CREATE, RouteKind.TAG_CREATE, RouteKind.DISCUSSION_CREATE,
                       RouteKind.DISCUSSION_COMMENT, RouteKind.JOB_CANCEL})


class GatewayDecider:
    def __init__(self, *, policy: Policy, router: ToolRouter, ask_user: AskUser,
                 caller_of: Callable[[str | None], Caller | None]):
        self.policy = policy
        self.router = router
        self.ask_user = ask_user
        self.caller_of = caller_of
        self._ids = itertools.count(1)
        #: allowed job launches waiting for the Hub's answer: their reservation stays open until
        #: the job joins the monitor, whose observed cost then replaces the estimate
        self._launching: dict[int, tuple[ParsedCall, Decision]] = {}

    def job_launched(self, request: GatewayRequest) -> str | None:
        """The Hub accepted a job this decider allowed: the call id to watch it under (the
        caller then watches the job and calls ``settle_launch``)."""
        pair = self._launching.get(id(request))
        return pair[0].id if pair else None

    def settle_launch(self, request: GatewayRequest) -> None:
        pair = self._launching.pop(id(request), None)
        if pair is not None:
            self.policy.finish(pair[0], pair[1], _OK)  # the watched job's cost now counts instead

    async def decide(self, request: GatewayRequest) -> GatewayVerdict:
        caller = self.caller_of(request.caller)
        parent, who = caller if caller is not None else ("", "a process the agent started")
        if request.kind in _HARMLESS:
            return GatewayVerdict(True)
        call = self._as_tool_call(request, parent)
        if call is None:  # nothing the policy can judge: a human decides, even in YOLO mode
            reason = f"{who} wants to {_describe(request)}"
            return await self._ask_human(request, parent, reason, None, None)
        decision = self.policy.decide(call)
        if decision.verdict == "allow":
            self._allowed(request, call, decision)
            return GatewayVerdict(True)
        if decision.verdict == "deny":
            return GatewayVerdict(False, f"Refused by the user's rule: {decision.reason}.")
        reason = f"{who} wants to {_describe(request)} ({decision.reason})"
        return await self._ask_human(request, parent, reason, call, decision.estimate)

    async def _ask_human(self, request: GatewayRequest, parent: str, reason: str, call: ParsedCall | None,
                         estimate: float | None) -> GatewayVerdict:
        item_id = f"{parent or 'gateway'}~g{next(self._ids)}"
        item = ApprovalItem(tool_call_id=item_id, tool=call.name if call is not None else "hub_request",
                            arguments=call.arguments if call is not None else _arguments(request),
                            reason=reason, estimated_cost_usd=estimate, always_ask=call is None,
                            review=_review(request))
        [answer] = (await self.ask_user([item], parent or item_id)) or [None]
        if answer is None or not answer.approved:
            why = f" ({answer.feedback})" if answer is not None and answer.feedback else ""
            return GatewayVerdict(False, f"The user refused this Hub request: {reason}{why}.")
        if call is not None:
            approval = self.policy.approve(call)  # a deny rule still wins; a cost is reserved
            if not approval.allowed:
                return GatewayVerdict(False, f"Refused: {approval.reason}.")
            self._allowed(request, call, approval)
        return GatewayVerdict(True)

    def _allowed(self, request: GatewayRequest, call: ParsedCall, decision: Decision) -> None:
        if call.name == "hf_jobs" and decision.reservation is not None:
            self._launching[id(request)] = (call, decision)  # reserved until the job is watched
        else:
            self.policy.finish(call, decision, _OK)

    def _as_tool_call(self, request: GatewayRequest, parent: str) -> ParsedCall | None:
        body = request.body if isinstance(request.body, dict) else {}
        args: dict | None = None
        if request.kind in (RouteKind.JOB_CREATE, RouteKind.SCHEDULED_JOB_CREATE):
            spec = body.get("jobSpec") if isinstance(body.get("jobSpec"), dict) else body
            command = spec.get("command") or spec.get("arguments") or ["(a command)"]
            timeout = spec.get("timeoutSeconds") or spec.get("timeout")
            args = {"operation": "run", "command": [str(c) for c in command] if isinstance(command, list) else
                    [str(command)], "image": str(spec.get("dockerImage") or spec.get("spaceId") or "(image)"),
                    "hardware_flavor": str(spec.get("flavor") or "cpu-basic")}
            if isinstance(timeout, (int, float)) and timeout > 0:
                args["timeout"] = f"{int(timeout)}s"
            if request.kind == RouteKind.SCHEDULED_JOB_CREATE:
                args["operation"], args["schedule"] = "scheduled run", str(body.get("schedule") or "@daily")
            name = "hf_jobs"
        elif request.kind == RouteKind.COMMIT and request.repo_id:
            args = {"operation": "upload", "repo_id": request.repo_id, "repo_type": request.repo_type or "model",
                    "path": ", ".join(f.path for f in request.files[:5]) or "(files)", "content": "(from a process)"}
            name = "hf_repo_files"
        elif request.kind in _GIT_OPERATIONS and request.repo_id:
            args = {"operation": _GIT_OPERATIONS[request.kind], "repo_id": request.repo_id,
                    "repo_type": request.repo_type or "model"}
            name = "hf_repo_git"
        if args is None or self.router.get(name) is None:
            return None
        call = self.router.parse(f"{parent or 'gateway'}~g{next(self._ids)}", name, json.dumps(args))
        if call.error:
            log.warning("gateway request %s could not be judged as %s: %s", request.kind, name, call.error)
            return None
        return call


class _Done:
    success = True
    output = ""
    spill_path = None


_OK = _Done()


def _describe(request: GatewayRequest) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    spec = body.get("jobSpec") if isinstance(body.get("jobSpec"), dict) else body
    repo = f" {request.repo_type or 'model'} repo {request.repo_id}" if request.repo_id else ""
    if request.kind == RouteKind.JOB_CREATE:
        timeout = spec.get("timeoutSeconds")
        limit = f" for up to {int(timeout) // 60} min" if isinstance(timeout, (int, float)) and timeout else ""
        return f"run a job on {spec.get('flavor') or 'cpu-basic'}{limit}"
    if request.kind == RouteKind.COMMIT:
        return f"commit {len(request.files)} file(s) to the{repo}"
    if request.kind == RouteKind.SPACE_HARDWARE:
        flavor = body.get("flavor") or body.get("hardware")
        if isinstance(flavor, str) and flavor:
            return f"put the{repo or ' Space'} on {flavor} hardware{_hourly(flavor)}"
    words = {RouteKind.REPO_DELETE: "delete the", RouteKind.REPO_CREATE: "create the",
             RouteKind.REPO_SETTINGS: "change the settings of the", RouteKind.SPACE_HARDWARE: "request paid hardware for the",
             RouteKind.SPACE_SECRETS: "change the secrets of the", RouteKind.PR_MERGE: "merge a pull request into the"}
    if request.kind in words and repo:
        return f"{words[request.kind]}{repo}"
    return f"send {request.method} {request.path} to the Hub ({request.kind})"


def _hourly(flavor: str) -> str:
    """A Space bills by the hour it runs, with no end the policy could reserve against."""
    from agent.jobs.pricing import hourly_price

    price = hourly_price(flavor)
    if price is None:
        return ", at a price this agent does not know"
    if price == 0:
        return " (free)"
    return f", billed ${price:.2f}/h while it runs, until it sleeps or is set back"


def _arguments(request: GatewayRequest) -> dict:
    args: dict = {"method": request.method, "path": request.path, "kind": str(request.kind)}
    if request.repo_id:
        args["repo"] = f"{request.repo_type or 'model'}/{request.repo_id}"
    if isinstance(request.body, dict):
        args["body"] = {k: v for k, v in list(request.body.items())[:12]}
    return args


def _review(request: GatewayRequest) -> HubWriteReview | None:
    if request.kind != RouteKind.COMMIT or not request.repo_id:
        return None
    repo_type = request.repo_type if request.repo_type in ("model", "dataset", "space") else "model"
    files = [HubWriteFile(path=f.path, change="delete" if f.operation.startswith("delete") else "add",
                          size=f.size, source="a process") for f in request.files[:200]]
    notes = [] if len(request.files) <= 200 else [f"…and {len(request.files) - 200} more files."]
    return HubWriteReview(repo_id=request.repo_id, repo_type=repo_type, operation="upload", files=files,
                          total_bytes=sum(f.size or 0 for f in request.files), notes=notes)
