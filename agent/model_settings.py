"""The session's model settings: /model (resolve, find the effort the new model takes from
the cache or a probe, switch), /effort (the preference, checked against the model at once)
and the ``settings_changed`` event that reports them with the approval mode and budget; the
picker's model lists (``list_models``) and the Hugging Face router's catalog behind them.

A probe that takes a request says so while it runs ("Checking whether … takes reasoning
effort high…"). A router model is checked against the catalog before it is used: no live
provider, a pinned provider that does not serve it, no tool support, not listed at all - each
is said before the switch. Mixed into ``Session``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.llm.effort import ProbeResult, normalise_effort, probe_effort
from agent.llm.models import ModelIdError, resolve_model
from agent.protocol import ErrorEvent, ModelList, SettingsChanged, ToolLog


class ModelSettingsMixin:
    # set by Session.__init__
    engine: Any
    client: Any
    policy: Any
    engine_settings: Any
    _catalog_fetch: asyncio.Future | None = None
    _listing: asyncio.Task | None = None

    # ------------------------------------------------------------------ resolving

    def _router_base(self) -> str:
        from agent.endpoints import router_base

        return router_base(self.config)

    def _resolve(self, model_id: str):
        return resolve_model(model_id, router_base=self._router_base())

    def _model_served(self, model, name: str) -> None:
        """A server named its answers differently from the id asked for: say it once."""
        self.engine.emit(ToolLog(tool="system", log=f"{model.label} answers as {name} (the name its server gives)."))
        if model.id == self.model.id:
            self._settings_changed(quiet=True)

    # ------------------------------------------------------------------ the router's catalog

    async def _refresh_catalog(self, *, force: bool = False) -> bool | None:
        """Fetch the router's catalog when it is old (or ``force``); one fetch at a time,
        shared by whoever asks. None: not fetched (fresh enough, or failed moments ago)."""
        catalog = self.client.catalog
        if catalog is None or not (force or catalog.due()):
            return None
        if self._catalog_fetch is None or self._catalog_fetch.done():
            self._catalog_fetch = asyncio.ensure_future(catalog.refresh(self.net))
        ok = await asyncio.shield(self._catalog_fetch)
        if ok and self.model.route == "hf_router":
            # the current model's window and price may have just become known
            self.engine.refresh_window()
            self._settings_changed(quiet=True)
        return ok

    async def _catalog_at_start(self) -> None:
        """Started after "ready" for a router model: the catalog prices its calls; what it says
        against the model is said once."""
        await self._refresh_catalog()
        self._warn_catalog(self.model)

    def _warn_catalog(self, model) -> None:
        catalog = self.client.catalog
        if model.route != "hf_router" or catalog is None:
            return
        for problem in catalog.problems(model.id):
            self.engine.emit(ToolLog(tool="system", log=f"⚠ {problem}"))

    # ------------------------------------------------------------------ the picker's lists

    def _list_models(self, refresh: bool) -> None:
        if self._listing is not None and not self._listing.done():
            self._listing.cancel()
        self._listing = asyncio.create_task(self._send_model_lists(refresh))

    async def _send_model_lists(self, refresh: bool) -> None:
        from agent.model_choices import RECENT_FILE, ChoiceBuilder, RecentModels, local_note, probe_local

        catalog = self.client.catalog
        builder = ChoiceBuilder(self.client, self.engine_settings.context_windows, self._resolve)
        recent = RecentModels(self.data_dir / RECENT_FILE).load()
        local = None
        router_task = asyncio.create_task(self._refresh_catalog(force=refresh)) \
            if catalog is not None and (refresh or catalog.due()) else None

        def send() -> None:
            if router_task is not None and not router_task.done():
                state, note = "loading", "asking the router…"
            else:
                state, note = _catalog_state(catalog)
            self.emit(ModelList(current=self.model.id, choices=builder.build(self.model, recent, local),
                                router=state, router_note=note, local_pending=local is None,
                                local_note=local_note(local)))

        send()
        local_task = asyncio.create_task(probe_local(self.net))
        pending = {t for t in (local_task, router_task) if t is not None}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if local_task in done:
                    local = local_task.result() if local_task.exception() is None else []
                send()
        finally:
            for task in pending:
                task.cancel()

    async def _switch_model(self, model_id: str) -> None:
        """/model: resolve, find the effort the new model takes (cache or probe), switch.
        A probe that shows the model cannot be used at all (no key, unknown id, no
        credits) keeps the current model."""
        try:
            model = self._resolve(model_id)
        except ModelIdError as exc:
            self.emit(ErrorEvent(message=str(exc), kind="invalid_model"))
            return
        if model.route == "hf_router":
            await self._refresh_catalog()
            self._warn_catalog(model)
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
        self._remember_model()

    def _remember_model(self) -> None:
        from agent.model_choices import RECENT_FILE, RecentModels

        RecentModels(self.data_dir / RECENT_FILE).touch(self.model.id)

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
            served_model=self.client.served.get(self.model.id),
        ))


def _catalog_state(catalog) -> tuple[str, str]:
    """(state, note) of the router's catalog for the picker."""
    from agent.model_choices import ago

    if catalog is None:
        return "unavailable", "not used"
    age = catalog.age_s()
    failed = f"; the router did not answer: {catalog.error}" if catalog.error else ""
    if age is None:
        return "unavailable", catalog.error or "not fetched yet"
    if catalog.fresh():
        return "live", f"fetched {ago(age)}"
    return "cached", f"kept from {ago(age)}{failed}"
