"""The app's side of agent/permissions.py: before the engine starts on the user's own config
file, its permission settings are compared with what the user last agreed to.

Narrowing applies at once and is said in the conversation. A widening is not used until the
user answers: the app takes what they agreed to, shows the change
(mlintern_tui/screens/permission_change.py) from a worker, and applies the answer before the
engine starts - no session exists until then, so nothing runs on settings nobody accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config import ConfigError, budget_override
from agent.permissions import PermissionReview, review_permissions

if TYPE_CHECKING:
    from agent.config import Config
    from mlintern_tui.app import MLInternApp


def _lines(lines: list[str], sign: str) -> str:
    return "\n".join(f"  {sign} {line}" for line in lines)


def settle_then_boot(app: MLInternApp) -> None:
    """Compare the app's config with what the user agreed to, ask about a widening, then start
    the engine (when the app starts one)."""
    try:
        cli_cap = budget_override() is not None
    except ConfigError:
        cli_cap = False
    review = review_permissions(app.config, cli_cap=cli_cap)
    full = app.config
    if review.widened:
        app.use_config(review.safe_config(full))
        app.update_status()
    if not (review.widened or review.narrower or review.note):
        if app.start_engine:  # nothing to say or ask: the first frame names the model
            app.boot_engine()
        return
    app.run_worker(_settle(app, review, full), name="permissions", group="permissions", exit_on_error=False)


async def _settle(app: MLInternApp, review: PermissionReview, full: Config) -> None:
    try:
        await _ask(app, review, full)
    except Exception as exc:  # the engine still starts, on what the user agreed to
        await app.notice("error", f"The permission check failed ({type(exc).__name__}: {exc}); the agent runs "
                                  "with the permissions you last agreed to.")
    if app.start_engine:
        app.boot_engine()


async def _ask(app: MLInternApp, review: PermissionReview, full: Config) -> None:
    if review.note:
        await app.notice("error", review.note)
    if review.narrower:
        await app.notice("info", "Your config narrowed the agent's permissions since the last start; in force "
                                 f"now:\n{_lines(review.narrower, '-')}")
    if review.widened:
        from mlintern_tui.screens.permission_change import PermissionChangeScreen

        accept = await app.push_screen_wait(PermissionChangeScreen(review, app.approval_grace_s))
        if accept:
            app.use_config(full)
            app.update_status()
            try:
                review.accept()
            except OSError as exc:
                await app.notice("error", f"Accepted for this run, but it could not be remembered ({exc}): the "
                                          "next start asks again.")
            await app.notice("info", f"Accepted: the agent may now use these settings from "
                                     f"{review.config_file}:\n{_lines(review.wider, '+')}")
        else:
            error = review.keep()
            if error:
                await app.notice("error", f"Kept what you agreed to for this run, but the file could not be put "
                                          f"back ({error}): the next start asks again.")
            else:
                await app.notice("info", f"Kept what you agreed to; {review.config_file} has its permission "
                                         "settings back as they were.")
