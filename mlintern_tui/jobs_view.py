"""The app's side of the Jobs pane: feeding it, where it shows, and cancelling a job.

The pane lives in the side column, behind an Output | Jobs tab pair, and in the jobs view:
the same pane across the whole width (the loss plot needs >= 100 columns), entered with
ctrl+g or /jobs and left with ctrl+g or escape, back to the prompt. The side column shows
what is live: a new job brings the Jobs tab forward; tool output brings Output back once no
job is running, unless the user picked a tab themselves.

The pane is imported and mounted when first needed (a job event, the Jobs tab, ctrl+g), so a
session without jobs starts as fast as before it existed.

Mixed into ``MLInternApp`` (handlers are found by name: ``@on`` does not see a mixin).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.widgets import Tab, Tabs

if TYPE_CHECKING:
    from textual.screen import Screen

    from agent.protocol import JobUpdate
    from widgets.jobs_pane import JobsPane


class JobsViewMixin:
    _side_tab = "output"
    _side_tab_pinned = False  # the user chose the tab: only a new job moves it
    _tab_echoes = 0  # TabActivated messages still to come from our own switches
    _jobs_pane: JobsPane | None = None
    _jobs_pane_mounting: asyncio.Task | None = None
    # set by the app's __init__
    _jobs_seen: set[str]
    jobs_clock: Callable[[], float]

    # ------------------------------------------------------------------ places

    @property
    def jobs_pane(self) -> JobsPane | None:
        """The Jobs pane, once something needed it (None before the first job)."""
        task = self._jobs_pane_mounting
        return self._jobs_pane if task is not None and task.done() else None

    async def ensure_jobs_pane(self) -> JobsPane:
        if self._jobs_pane_mounting is None:
            from agent.jobs.loss import LossTracker
            from widgets.jobs_pane import JobsPane

            pane = self._jobs_pane = JobsPane(id="jobs", loss_tracker=LossTracker, clock=self.jobs_clock)

            async def mount() -> None:
                await self.query_one("#side").mount(pane)

            # a task, so a second caller during the mount waits for the same one
            self._jobs_pane_mounting = asyncio.ensure_future(mount())
        await self._jobs_pane_mounting
        assert self._jobs_pane is not None
        return self._jobs_pane

    @property
    def main_screen(self) -> Screen:
        """The screen the panes live on (``self.screen`` is a modal while one is open)."""
        return self.screen_stack[0]

    @property
    def jobs_view_active(self) -> bool:
        return self.main_screen.has_class("-jobs-view")

    @property
    def side_tab(self) -> str:
        """"output" or "jobs": which pane the side column shows below the plan."""
        return self._side_tab

    def focus_in_jobs(self) -> bool:
        pane, focused = self.jobs_pane, self.focused
        return pane is not None and focused is not None and pane in focused.ancestors_with_self

    # ------------------------------------------------------------------ events from the bridge

    async def on_job_update(self, event: JobUpdate) -> None:
        from agent.jobs.pricing import hourly_price

        pane = await self.ensure_jobs_pane()
        backend = self._backend_of(event.job_id)
        session = self.session
        prices = session.jobs.monitor.prices if session is not None else None
        price = None if backend == "local" else hourly_price(event.flavor, prices)
        pane.update_job(event, price, backend)
        if event.job_id not in self._jobs_seen:
            self._jobs_seen.add(event.job_id)
            self.set_side_tab("jobs", by_user=False)  # a new job is news
        running = pane.running_count
        self.update_status(running_jobs=running)
        label = f"Jobs · {running} running" if running else "Jobs"
        tab = self.query_one("#tab-jobs", Tab)
        if tab.label.plain != label:
            tab.label = label

    def on_tool_output_started(self) -> None:
        """A tool started printing: show it, unless a job is running or the user chose."""
        pane = self.jobs_pane
        if not self._side_tab_pinned and (pane is None or pane.active_count == 0):
            self.set_side_tab("output", by_user=False)

    def _backend_of(self, job_id: str) -> str:
        session = self.session
        if session is None:  # events fed without an engine (tests, replays)
            return "local" if job_id.startswith("local-") else "hf"
        watched = session.jobs.monitor.jobs.get(job_id)
        return watched.info.backend if watched is not None else session.jobs.backend.name

    # ------------------------------------------------------------------ side tabs

    def set_side_tab(self, name: str, *, by_user: bool) -> None:
        """Show "output" or "jobs" below the plan (the Jobs pane must be mounted for "jobs")."""
        self._side_tab = name
        self._side_tab_pinned = by_user
        self.query_one("#side").set_class(name == "jobs", "-tab-jobs")
        tabs = self.query_one("#side-tabs", Tabs)
        if tabs.active != f"tab-{name}":
            self._tab_echoes += 1
            tabs.active = f"tab-{name}"
        if name == "output":
            self.call_after_refresh(self.tool_log.flush)  # it buffered while hidden

    async def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.id != "side-tabs":
            return
        if self._tab_echoes:  # arrives late, maybe after a newer switch: not a click
            self._tab_echoes -= 1
            return
        name = (event.tab.id or "").removeprefix("tab-")
        if name != self._side_tab:
            if name == "jobs":
                await self.ensure_jobs_pane()
            self.set_side_tab(name, by_user=True)

    # ------------------------------------------------------------------ the jobs view

    async def show_jobs_view(self, select: str | None = None) -> None:
        """The Jobs pane across the whole width, its table focused."""
        pane = await self.ensure_jobs_pane()
        self.set_side_tab("jobs", by_user=True)
        self.main_screen.add_class("-jobs-view")
        if select is not None:
            pane.select(select)
        self.call_after_refresh(pane.table.focus)
        self.refresh_bindings()

    def leave_jobs_view(self) -> None:
        """Back to the conversation with the prompt focused (narrow screens too)."""
        self.main_screen.remove_class("-jobs-view", "-show-side")
        self.call_after_refresh(self.prompt.focus)
        self.refresh_bindings()

    async def action_toggle_jobs(self) -> None:
        if self.jobs_view_active or self.focus_in_jobs():
            self.leave_jobs_view()
        else:
            await self.show_jobs_view()

    def action_leave_jobs(self) -> None:
        self.leave_jobs_view()

    # ------------------------------------------------------------------ cancelling

    def on_jobs_pane_cancel_requested(self, event: JobsPane.CancelRequested) -> None:
        event.stop()
        self.confirm_job_cancel(event.job_id)

    @work(group="job-cancel", exclusive=True, exit_on_error=False)
    async def confirm_job_cancel(self, job_id: str) -> None:
        """Ask, then cancel through the monitor; a refusal becomes a notice."""
        from agent.jobs.base import JobError
        from mlintern_tui.screens.confirm import ConfirmScreen
        from widgets.jobs_table import format_cost, format_elapsed, status_cell

        row = (await self.ensure_jobs_pane()).row(job_id)
        status, _ = status_cell(row.status)
        detail = (f"{status} on {row.flavor or 'unknown hardware'} · {format_elapsed(row.elapsed_s)} · "
                  f"{format_cost(row)} so far. The log stays on disk and the agent is told at its next step.")
        if not await self.push_screen_wait(ConfirmScreen("Cancel job", f"Cancel job {job_id}?", detail,
                                                         yes="cancel the job", no="keep it running")):
            return
        if self.session is None:
            await self.notice("error", f"Could not cancel job {job_id}: the agent is not running yet.")
            return
        self.notify(f"Cancelling job {job_id}…", timeout=3)
        try:
            await self.session.jobs.monitor.cancel(job_id)
        except JobError as exc:
            await self.notice("error", f"Could not cancel job {job_id}: {exc}")
        except Exception as exc:  # a network failure talking to the backend
            await self.notice("error", f"Could not cancel job {job_id} ({type(exc).__name__}: {exc}). "
                                       "It may still be running; try again, or cancel it where it runs.")

    # ------------------------------------------------------------------ /jobs

    async def jobs_command(self, arg: str) -> None:
        """``/jobs`` shows the jobs view, ``/jobs ID`` selects a job, ``/jobs cancel ID`` asks
        to cancel one. IDs may be shortened to any unique prefix."""
        words = arg.split()
        if not words:
            await self.show_jobs_view()
            return
        cancel = words[0] == "cancel"
        if cancel:
            words = words[1:]
        if len(words) != 1:
            await self.notice("error", "Usage: /jobs, /jobs <id> or /jobs cancel <id>.")
            return
        job_id = await self._resolve_job(words[0])
        if job_id is None:
            return
        await self.show_jobs_view(select=job_id)
        if cancel:
            from widgets.jobs_table import status_cell

            record = (await self.ensure_jobs_pane()).selected_job
            if record is not None and record.finished_stage:
                await self.notice("info", f"Job {job_id} already ended ({status_cell(record.status)[0]}); "
                                          "nothing to cancel.")
                return
            self.confirm_job_cancel(job_id)

    async def _resolve_job(self, text: str) -> str | None:
        pane = self.jobs_pane
        ids = pane.job_ids if pane is not None else ()
        if not ids:
            await self.notice("error", "No jobs in this session yet.")
            return None
        if text in ids:
            return text
        found = [job_id for job_id in ids if job_id.startswith(text)]
        if len(found) == 1:
            return found[0]
        if found:
            await self.notice("error", f"{text!r} matches {len(found)} jobs ({', '.join(found)}); type more of the id.")
        else:
            await self.notice("error", f"No job {text!r} in this session. Jobs: {', '.join(ids)}.")
        return None
