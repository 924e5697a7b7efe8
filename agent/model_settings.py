"""The session's model settings: /model (resolve, find the effort the new model takes from
the cache or a probe, switch), /effort (the preference, checked against the model at once)
and the ``settings_changed`` event that reports them with the approval mode and budget.

A probe that takes a request says so while it runs ("Checking whether … takes reasoning
effort high…"). Mixed into ``Session``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.llm.effort import ProbeResult, normalise_effort, probe_effort
from agent.llm.models import ModelIdError, resolve_model
from agent.protocol import ErrorEvent, SettingsChanged, ToolLog


class ModelSettingsMixin:
    # set by Session.__init__
    engine: Any
    client: Any
    policy: Any
    engine_settings: Any

    async def _switch_model(self, model_id: str) -> None:
        """/model: resolve, find the effort the new model takes (cache or probe), switch.
        A probe that shows the model cannot be used at all (no key, unknown id, no
        credits) keeps the current model."""
        try:
            model = resolve_model(model_id)
        except ModelIdError as exc:
            self.emit(ErrorEvent(message=str(exc), kind="invalid_model"))
            return
        result = await self._probe(model, explicit=False)
        if result.status == "failed" and result.error is not None:
            self.emit(ErrorEvent(
                message=f"Not switching to {model.id}: {result.error.message} Still using {self.model.label}.",
                kind=result.error.kind, detail=result.error.detail,
            ))
            return
        self.engine.set_model(model)
        self._render_system_prompt()
        self._log_probe(result, model)
        self._settings_changed()

    async def _set_effort(self, effort: str | None) -> None:
        """/effort: the new preference, checked against the current model at once (what was
        known about the model is asked again: the user wants to know now)."""
        try:
            preference = normalise_effort(effort)
        except ValueError as exc:
            self.emit(ErrorEvent(message=str(exc).capitalize() + ".", kind="invalid_effort"))
            return
        self.engine_settings.reasoning_effort = preference
        model = self.model
        if preference is not None and not model.is_demo and self.client.efforts is not None:
            self.client.efforts.forget(model)
        result = await self._probe(model, explicit=True)
        if result.status == "failed" and result.error is not None:
            self.engine.emit(ToolLog(tool="system", log=f"Could not check the reasoning effort of {model.label}: "
                                                        f"{result.error.message}"))
        self._log_probe(result, model)
        self._settings_changed()

    async def _probe(self, model, *, explicit: bool) -> ProbeResult:
        preference = self.engine_settings.reasoning_effort
        try:
            if preference is not None and not model.is_demo:
                # litellm's model map answers some levels without a request; loading it
                # (seconds) must not freeze the event loop
                from agent.llm.runtime import get_litellm

                await asyncio.to_thread(get_litellm)
            asked: list[str] = []

            def on_ask(level: str) -> None:
                asked.append(level)
                note = (f"Checking whether {model.label} takes reasoning effort {level}…" if len(asked) == 1
                        else f"{model.label} refused effort {asked[-2]}; trying {level}…")
                self.engine.emit(ToolLog(tool="system", log=note))

            return await probe_effort(self.client, model, preference, explicit=explicit, on_ask=on_ask)
        except asyncio.CancelledError:
            # an interrupt stops the probe, not the switch: the effort is settled at run time
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            self.engine.emit(ToolLog(tool="system", log=f"Effort check for {model.label} interrupted; "
                                                        "the effort is settled on the first request."))
            return ProbeResult(preference, self.client.effective_effort(model, preference), "skipped")

    def _log_probe(self, result: ProbeResult, model) -> None:
        note = result.describe(model)
        if note:
            self.engine.emit(ToolLog(tool="system", log=note))

    def _settings_changed(self, quiet: bool = False) -> None:
        preference = self.engine_settings.reasoning_effort
        self.emit(SettingsChanged(
            model=self.model.id, model_label=self.model.label,
            effort=self.client.effective_effort(self.model, preference),
            effort_requested=preference,
            yolo=self.policy.mode == "yolo",
            yolo_cap_usd=self.policy.budget.cap_usd,
            context_window=self.engine.window.tokens,
            approval_mode=self.policy.mode,
            budget_left_usd=self.policy.budget_left(),
            budget_exact=self.policy.budget_exact(),
            model_priced=self.client.price_known(self.model),
            quiet=quiet,
        ))
