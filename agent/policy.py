"""The approval policy: one decision for every tool call, before anything runs.

``Policy.decide`` is the single entry point. The engine calls it for each batch of calls
(``decide_batch``, so the batch's budget reservations are made together), and a governed
``ToolRouter`` refuses to execute a call without an allow ``Decision`` this policy issued
for that exact call and those exact arguments; a caller that brings no decision (a
sub-agent, an MCP bridge) gets one made on the spot, and a gated call is then refused with
its reason. There is no path to a tool around it.

What the tools know about their own risk stays with them (``Tool.approval_reason``,
``always_ask``, ``estimate``); the policy adds the gates of tools it knows by name (Hub
uploads/deletes, destructive git operations), MCP tools in ask mode, the mode, the rules
and the budget:

* ``ask``: the reference gates, plus local ``bash`` (always: what a shell command touches
  cannot be known from its text), ``write``/``edit`` outside the working directory, every
  job that runs on this machine (local code, like bash, whatever ``confirm_cpu_jobs`` says),
  and every MCP tool (its effects are unknown).
* ``auto`` (default): the reference gates - GPU jobs, CPU jobs while ``confirm_cpu_jobs``,
  every scheduled-job operation, sandboxes that are paid or get the HF token, Hub uploads
  and deletes, destructive git operations.
* every mode: a change to a protected place (the config, the data dir, a project's
  ``.mcp.json``, shell start-up files; agent/protected.py) always asks, like a scheduled job.
* ``yolo``: gated calls are approved without asking, except scheduled-job operations and
  changes to protected places; every call that costs money (gated or not) is approved only
  if its estimate fits the budget, and an unestimable one asks - so does one that would fit
  while some of the session's spend has no known price (the budget cannot promise anything
  then). Once the observed spend reaches the cap YOLO pauses: gated calls ask, and the
  engine asks before the next model call whether to raise the cap.

Rules: a deny rule always wins (over an allow rule, YOLO, and a human's approval of edited
arguments) and applies to any call, gated or not. An allow rule answers a gated call's
question without asking, except for always-ask gates (scheduled jobs, protected places); in
yolo mode a costed call it allows still has to fit the budget.

A decision is bound to one call: its id, its tool and its exact arguments (as sent and as
parsed), and it is spent by its first run. Calls of one batch that share an id are all
denied: a decision (and a reservation) for one of them could otherwise run another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

from agent import rules as R
from agent.budget import Budget, Observer
from agent.config import ConfigError
from agent.protocol import ApprovalMode, ApprovalRule, RuleScope, ToolDecision
from agent.tools.base import ApprovalSettings

if TYPE_CHECKING:
    from agent.tools.base import ToolResult
    from agent.tools.router import ParsedCall

log = logging.getLogger(__name__)
Verdict = Literal["allow", "ask", "deny"]
Source = Literal["", "invalid", "free", "rule", "yolo", "user"]

#: tools the policy gates by name and operation, whatever the tool itself says
HUB_GATES: dict[str, dict[str, str]] = {
    "hf_repo_files": {"upload": "uploads files to", "delete": "deletes files from"},
    "hf_repo_git": {
        "delete_branch": "deletes a branch of", "delete_tag": "deletes a tag of",
        "merge_pr": "merges a pull request into", "create_repo": "creates",
        "update_repo": "changes the visibility or gating of",
    },
}
#: (tool, operation or None for any) whose calls are billed, even when the tool gives no estimate
BUDGETED: frozenset[tuple[str, str | None]] = frozenset({("hf_jobs", "run"), ("sandbox_create", None)})
#: given a call id and the time its decision was made: how to watch what the call started
ObserverLookup = Callable[[str, float], "Observer | None"]


@dataclass(frozen=True)
class Assessment:
    """What the policy knows about one call before mode, rules and budget."""

    gated: bool
    reason: str = ""
    always_ask: bool = False
    costed: bool = False
    estimate: float | None = None


@dataclass(eq=False)
class Decision:
    verdict: Verdict
    call_id: str
    reason: str = ""
    #: what let it run: not gated (free), a rule, YOLO within budget, or the user
    source: Source = ""
    estimate: float | None = None
    #: what "always" would save (ask decisions only)
    suggested_rule: ApprovalRule | None = None
    #: a human must look at this call on its own (scheduled jobs): no batch approval covers it
    always_ask: bool = False
    #: the rule that decided, if one did
    rule: ApprovalRule | None = None
    #: budget key of the reservation this decision holds, if any
    reservation: str | None = None
    issued_at: float = field(default_factory=time.time)
    used: bool = False
    _policy: Any = field(default=None, repr=False)
    _digest: str = field(default="", repr=False)

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def call_digest(call: ParsedCall) -> str:
    """What a decision is bound to: the tool name, the arguments the model sent and the
    parameters the tool will run with (so changing either after the decision voids it)."""
    params: Any = None
    if call.params is not None:
        try:
            params = call.params.model_dump(mode="json")
        except Exception:
            params = repr(call.params)
    text = json.dumps([call.name, call.arguments, params], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Policy:
    def __init__(
        self,
        approval: ApprovalSettings | None = None,
        *,
        cap_usd: float | None = None,
        rules: Iterable[ApprovalRule] = (),
        spent: Callable[[], float] = lambda: 0.0,
        config_path: Path | None = None,
        persist: bool = True,
        unpriced: Callable[[], int] = lambda: 0,
    ):
        self.approval = approval or ApprovalSettings()
        #: ``unpriced``: how many of the session's model calls and jobs have no known price
        self.budget = Budget(cap_usd, spent, unpriced)
        self.rules: list[ApprovalRule] = list(rules)
        #: tool name -> how to watch what a successful call of it started (set by the session)
        self.observers: dict[str, ObserverLookup] = {}
        self.config_path = config_path
        self.persist = persist
        self._seq = 0

    # ------------------------------------------------------------------ settings

    @property
    def mode(self) -> ApprovalMode:
        return self.approval.mode  # type: ignore[return-value]

    def set_mode(self, mode: ApprovalMode) -> None:
        if mode not in ("ask", "auto", "yolo"):
            raise ValueError(f"unknown approval mode {mode!r}: use ask, auto or yolo")
        self.approval = replace(self.approval, mode=mode)

    def budget_left(self) -> float | None:
        """The YOLO headroom, shown only in yolo mode. While some spend has no known price
        it is only an upper bound: see ``budget_exact`` and ``budget_note``."""
        return None if self.mode != "yolo" else self.budget.left()

    def budget_exact(self) -> bool:
        return self.budget.exact

    def budget_note(self) -> str:
        """"" when ``budget_left`` is exact; otherwise why it is at most that much."""
        if self.mode != "yolo" or self.budget.cap_usd is None:
            return ""
        return self.budget.unpriced_reason()

    # ------------------------------------------------------------------ deciding

    def assess(self, call: ParsedCall) -> Assessment:
        tool, params = call.tool, call.params
        if call.error or tool is None:
            return Assessment(gated=False)
        reason = tool.approval_reason(params, self.approval) or self._named_gate(call)
        always = bool(tool.always_ask(params))
        from agent.protected import protected_reason  # loaded with the first tool call, not at start

        guarded = protected_reason(call, self.approval.cwd)
        if guarded:  # the user's safeguards: only a human may change them, whatever the mode or rules
            reason, always = guarded + (f"\nAlso: {reason}" if reason else ""), True
        estimate = tool.estimate(params)
        op = R.operation_of(params)
        if estimate is not None and _unbounded_job(call):
            estimate = None  # "$0" would fit any budget, and the job would run until the backend's default
        costed = estimate is not None or (call.name, op) in BUDGETED or (call.name, None) in BUDGETED
        return Assessment(gated=bool(reason) or always, reason=reason or "", always_ask=always,
                          costed=costed, estimate=estimate)

    def _named_gate(self, call: ParsedCall) -> str | None:
        op = (R.operation_of(call.params) or "").strip().lower()
        verb = HUB_GATES.get(call.name, {}).get(op)
        if verb:
            repo = getattr(call.params, "repo_id", None) or "?"
            return f"{call.name} {op} {verb} the Hub repo {repo}"
        if self.mode != "ask":
            return None
        if getattr(call.tool, "origin", "") == "mcp":
            return f"ask mode: {call.name} is an MCP tool, and what it changes is not known here"
        if call.name == "hf_jobs" and op == "run" and getattr(call.tool, "backend_name", None) in (None, "local"):
            # a local job is a process on this machine running the model's code: bash by another name
            return "ask mode: this job runs its code on this machine, like a bash command"
        return None

    def decide(self, call: ParsedCall) -> Decision:
        with self.budget.lock:
            return self._decide(call)

    def decide_batch(self, calls: Iterable[ParsedCall]) -> dict[str, Decision]:
        """Decisions for calls that may run together: reservations are made in call order
        under one lock, so the batch as a whole never promises more than the budget.

        Calls sharing an id are all denied (and reserve nothing): the answer is keyed by id,
        so one call's decision would otherwise be handed to another."""
        calls = list(calls)
        ids = Counter(call.id for call in calls)
        out: dict[str, Decision] = {}
        with self.budget.lock:
            for call in calls:
                if ids[call.id] > 1:
                    out[call.id] = self._issue(call, "deny", reason=(
                        f"one of {ids[call.id]} calls in this response sharing the id {call.id!r}, so none of them "
                        "was run (every call needs its own id)"))
                else:
                    out[call.id] = self._decide(call)
        return out

    def _decide(self, call: ParsedCall) -> Decision:
        if call.error or call.tool is None:
            return self._issue(call, "allow", source="invalid")  # the router returns the error, runs nothing
        a = self.assess(call)
        denied = self._match("deny", call)
        if denied is not None:
            return self._issue(call, "deny", reason=R.denial_reason(denied, call.name, call.params, self.approval.cwd),
                                   rule=denied)
        yolo = self.mode == "yolo"
        if not a.gated:
            if yolo and a.costed:
                # a call that is billed without being gated (a CPU job with confirm_cpu_jobs off)
                strict = replace(self.approval, mode="auto", confirm_cpu_jobs=True)
                reason = call.tool.approval_reason(call.params, strict) or f"{call.name} is billed"
                return self._within_budget(call, a, reason, source="free")
            return self._issue(call, "allow", source="free")
        if a.always_ask:
            return self._ask(call, a, a.reason)
        allowed = self._match("allow", call)
        if allowed is not None:
            if yolo and a.costed:
                return self._within_budget(call, a, a.reason, source="rule", rule=allowed)
            return self._issue(call, "allow", source="rule", rule=allowed, estimate=a.estimate)
        if not yolo:
            return self._ask(call, a, a.reason, suggested=R.suggest(call.name, call.params, self.approval.cwd))
        if self.budget.reached():
            return self._ask(call, a, f"{a.reason}. {self.pause_text()}")
        if a.costed:
            return self._within_budget(call, a, a.reason, source="yolo")
        return self._issue(call, "allow", source="yolo", estimate=a.estimate)

    def approve(self, call: ParsedCall) -> Decision:
        """A human approved exactly this call (arguments included). A deny rule still wins;
        a costed call's estimate is reserved past the cap, so later auto-approvals see it."""
        with self.budget.lock:
            if call.error or call.tool is None:
                return self._issue(call, "allow", source="invalid")
            denied = self._match("deny", call)
            if denied is not None:
                return self._issue(call, "deny", reason=R.denial_reason(denied, call.name, call.params, self.approval.cwd),
                                   rule=denied)
            a = self.assess(call)
            key = None
            if a.costed and a.estimate is not None:
                key = self._key(call)
                self.budget.reserve(key, a.estimate, force=True)
            return self._issue(call, "allow", source="user", estimate=a.estimate, reservation=key)

    def pause_text(self) -> str:
        cap = self.budget.cap_usd or 0.0
        return (f"YOLO paused: ${self.budget.spent():.2f} spent of the ${cap:.2f} cap. Approve to run it anyway, "
                "or raise the cap with /yolo <dollars>")

    def _within_budget(self, call: ParsedCall, a: Assessment, reason: str, *, source: Source,
                       rule: ApprovalRule | None = None) -> Decision:
        key = self._key(call)
        why = self.budget.reserve(key, a.estimate)
        if why:
            return self._ask(call, a, f"{reason}. Not auto-approved: {why}")
        return self._issue(call, "allow", source=source, rule=rule, estimate=a.estimate, reservation=key)

    def _ask(self, call: ParsedCall, a: Assessment, reason: str, suggested: ApprovalRule | None = None) -> Decision:
        return self._issue(call, "ask", reason=reason, estimate=a.estimate, suggested_rule=suggested,
                           always_ask=a.always_ask)

    def _match(self, effect: str, call: ParsedCall) -> ApprovalRule | None:
        for rule in self.rules:
            if rule.effect == effect and R.matches(rule, call.name, call.params, self.approval.cwd):
                return rule
        return None

    def _key(self, call: ParsedCall) -> str:
        self._seq += 1
        return f"{call.id}#{self._seq}"  # model call ids repeat across turns on some providers

    def _issue(self, call: ParsedCall, verdict: Verdict, **kw: Any) -> Decision:
        return Decision(verdict, call.id, _policy=self, _digest=call_digest(call), **kw)

    # ------------------------------------------------------------------ running

    def admit(self, call: ParsedCall, decision: Decision | None) -> str | None:
        """None when ``decision`` lets this call run now (it is then spent); otherwise the
        reason it may not, as a tool result for the model."""
        if (decision is None or decision._policy is not self or decision.call_id != call.id
                or decision._digest != call_digest(call)):
            return (f"ERROR: {call.name} was NOT executed: it has no approval decision for these exact "
                    "arguments (every call goes through the approval policy).")
        with self.budget.lock:  # check-and-spend in one step, even for callers on other threads
            if decision.used:
                return f"ERROR: {call.name} was NOT executed: its approval was already used by another run."
            if decision.verdict == "deny":
                return f"ERROR: {call.name} was NOT executed: {decision.reason}."
            if decision.verdict == "ask":
                return f"ERROR: {call.name} was NOT executed: it needs the user's approval ({decision.reason})."
            decision.used = True
        return None

    def finish(self, call: ParsedCall, decision: Decision, result: ToolResult | None) -> None:
        """After the call: a failure releases its reservation; a success that started
        something billed keeps it until the observed cost is final; otherwise it closes.
        ``result`` None means the call was cancelled midway."""
        key = decision.reservation
        if key is None or not self.budget.holds(key):
            return
        if result is not None and not result.success:
            self.budget.release(key)
            return
        lookup = self.observers.get(call.name)
        try:
            observer = lookup(call.id, decision.issued_at) if lookup is not None else None
        except Exception:  # cannot tell what it started: keep the whole estimate, never assume $0
            log.exception("cannot watch what %s %s started; its reservation stays", call.name, call.id)
            return
        if observer is not None:
            self.budget.track(key, observer)
        elif result is None:
            self.budget.release(key)  # stopped before it started anything we can see
        else:
            self.budget.settle(key, None)

    def discard(self, decision: Decision) -> None:
        """A decision that will never be used (its call was cancelled before it started):
        its reservation goes back to the budget."""
        if not decision.used and decision.reservation is not None:
            self.budget.release(decision.reservation)

    # ------------------------------------------------------------------ rules

    def remember_answer(self, call: ParsedCall, answer: ToolDecision, suggested: ApprovalRule | None) -> str:
        """"Always allow" / "always deny" from an approval card (the agent's or a sub-agent's):
        save the rule the card showed, or the one sent, as the user answered. Returns the
        sentence that tells the user what was kept."""
        rule = answer.rule or suggested
        if rule is None:
            return (f"No rule saved for {call.name}: this call cannot be approved for good (it always asks), "
                    "so it was answered once.")
        rule = rule.model_copy(update={"effect": "allow" if answer.approved else "deny", "label": ""})
        saved, error = self.add_rule(rule, answer.remember)  # type: ignore[arg-type]
        where = f"this session only: {error}" if error else \
            f"saved for {'this project' if answer.remember == 'project' else 'all your projects'}"
        return f"Rule: {R.describe(saved)} ({where})."

    def add_rule(self, rule: ApprovalRule, scope: RuleScope) -> tuple[ApprovalRule, str | None]:
        """Apply ``rule`` from now on and save it. Returns the rule as kept, and the error
        message if saving failed (the rule still applies to this session then)."""
        rule = rule.model_copy(update={"scope": scope, "label": rule.label or R.label(rule)})
        if not any(R.same_scope(rule, r) and r.scope == scope for r in self.rules):
            self.rules.append(rule)
        if not self.persist:
            return rule, None
        try:
            R.save_rule(rule, scope, self.approval.cwd, self.config_path)
        except ConfigError as exc:
            return rule, str(exc)
        return rule, None


def _unbounded_job(call: ParsedCall) -> bool:
    """An HF job whose timeout rounds down to 0 s: the backend then applies its own default
    limit, so the tool's "$0" estimate says nothing about what it costs."""
    if call.name != "hf_jobs" or R.operation_of(call.params) not in ("run", "scheduled run"):
        return False
    if getattr(call.tool, "backend_name", None) == "local":
        return False  # this machine's CPU: $0 however long it runs
    from agent.jobs.pricing import parse_timeout

    timeout = getattr(call.params, "timeout", None)
    return isinstance(timeout, (str, int, float)) and parse_timeout(timeout) == 0
