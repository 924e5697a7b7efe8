"""What a process the agent starts may reach (issue 11): its environment and the Hub.

``bash`` and local jobs get this process's environment without credentials (agent/secrets.py;
``pass_env`` lets named ones through). With an HF token, they reach the Hub only through the
session's gateway (agent/hub_gateway.py), made when the first process needs it: ``HF_ENDPOINT``
points at it and ``HF_TOKEN`` is a stand-in labelled with the call that started the process,
so what the process spends or writes is decided by the session's policy like a tool call
(agent/gateway_policy.py). A job it launches joins the session's job monitor.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

from agent.llm.models import hf_token
from agent.secrets import agent_environment

if TYPE_CHECKING:
    from agent.gateway_policy import AskUser, GatewayDecider
    from agent.hub_gateway import GatewayRequest, HubGateway
    from agent.jobs.service import JobService
    from agent.policy import Policy
    from agent.tools.router import ToolRouter

_HF_TOKEN_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class ProcessAccess:
    def __init__(self, *, policy: Policy, router: ToolRouter, ask_user: AskUser, jobs: JobService,
                 hub: Callable[[], str], pass_env: tuple[str, ...] = (), turn: Callable[[], int] = lambda: 0):
        self.policy = policy
        self.router = router
        self.ask_user = ask_user
        self.jobs = jobs
        self.hub = hub
        self.pass_env = pass_env
        self.turn = turn
        self._gateway: HubGateway | None = None
        self._decider: GatewayDecider | None = None
        #: a stand-in token's label -> (call id, the process in words)
        self._callers: dict[str, tuple[str, str]] = {}
        self._watcher: Any = None  # an HF backend to watch Hub jobs when the session's runs local ones

    async def environment(self, call_id: str, label: str) -> dict[str, str]:
        """The environment for the process ``call_id`` starts (``label``: it in words, for cards)."""
        env = agent_environment(self.pass_env)
        if any(name in self.pass_env for name in _HF_TOKEN_NAMES):
            return env  # the user chose to give scripts the real token
        if not hf_token() or os.environ.get("HF_HUB_OFFLINE") == "1":
            return env
        gateway = self.gateway()
        await gateway.start()
        caller = f"{label} [{call_id}]"
        self._callers[caller] = (call_id, label)
        env["HF_ENDPOINT"] = gateway.url
        env["HF_TOKEN"] = gateway.issue_stand_in(caller)
        env.pop("HUGGING_FACE_HUB_TOKEN", None)
        return env

    def gateway(self) -> HubGateway:
        """The session's Hub gateway, made on first use (a process that needs the Hub)."""
        if self._gateway is None:
            from agent.gateway_policy import GatewayDecider
            from agent.hub_gateway import HubGateway

            self._decider = GatewayDecider(policy=self.policy, router=self.router, ask_user=self.ask_user,
                                           caller_of=lambda caller: self._callers.get(caller or ""))
            self._gateway = HubGateway(upstream=self.hub(), real_token=hf_token, decide=self._decider.decide,
                                       on_job=self._job_launched)
        return self._gateway

    def _hf_backend(self) -> Any:
        """The backend that watches Hub jobs: the session's own when it runs them, otherwise one
        made for this (a session on local jobs still pays for a Hub job its script launched)."""
        if self.jobs.backend.name == "hf":
            return self.jobs.backend
        if self._watcher is None:
            from agent.jobs.hf import HFJobsBackend

            self._watcher = HFJobsBackend(hf_token() or "", endpoint=self.hub())
        return self._watcher

    async def stop(self) -> None:
        if self._gateway is not None:
            await self._gateway.stop()

    def _job_launched(self, job: Any, request: GatewayRequest) -> None:
        """A job a process launched through the gateway joins the monitor like an hf_jobs one:
        its log in the Jobs pane, its cost in the receipt, a note for the model when it ends."""
        decider = self._decider
        assert decider is not None  # the gateway that called this was made with it
        if not isinstance(job, dict) or not job.get("id"):
            decider.settle_launch(request)  # the Hub refused it, or no job to watch: the estimate is released
            return
        backend = self._hf_backend()
        from agent.jobs.base import JobInfo

        status = job.get("status") if isinstance(job.get("status"), dict) else {}
        owner = job.get("owner") if isinstance(job.get("owner"), dict) else {}
        info = JobInfo(id=str(job["id"]), backend="hf", stage=str(status.get("stage") or "QUEUED"),
                       flavor=str(job.get("flavor") or ""), namespace=str(owner.get("name") or ""),
                       url=job.get("url") or None, created_at=time.time())
        # watched under the decision's call id, so the YOLO reservation follows the job's real cost
        self.jobs.monitor.watch(backend, info, turn=self.turn(), call_id=decider.job_launched(request) or "")
        decider.settle_launch(request)


__all__ = ["ProcessAccess"]
