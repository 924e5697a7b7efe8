"""Terminal notifications: what the app writes to the terminal when an approval waits, a turn
ends or a job ends while the terminal window is not focused (``terminal_notifications``).

- ``bell``: BEL, which most terminals turn into a sound, a flash or an urgent window hint.
- ``osc9``: ``ESC ] 9 ; text BEL`` (iTerm2, Windows Terminal, ConEmu, Ghostty, WezTerm …).
- ``osc777``: ``ESC ] 777 ; notify ; title ; body BEL`` (rxvt-unicode's, taken up by foot,
  Ghostty and WezTerm).
- ``auto``: OSC 777 where the environment names a terminal known to show it, OSC 9 for the
  iTerm2 / Windows Terminal / ConEmu family, a bell anywhere else. kitty documents only its own
  OSC 99 (its author declined OSC 777), so it gets the bell.
- ``off``: nothing.

Inside tmux an OSC is wrapped in tmux's DCS passthrough (it reaches the outer terminal only
with ``set -g allow-passthrough on``); a bell needs no wrapping.

The text comes partly from the model (a turn's answer) and from job details, so it is cleaned
first: no control or format characters (an ESC or a BEL in it could end the sequence and start
another), no ``;`` (a field separator for OSC 777, a sub-command for ConEmu's OSC 9), capped.
No Textual here: the app hands events in and writes what comes back.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Mapping

from agent.protocol import ApprovalRequired, Event, JobUpdate, TurnComplete

ESC = "\x1b"
BEL = "\x07"
TITLE = "mlintern"
TITLE_MAX = 40
BODY_MAX = 120
#: job statuses after which a job has ended
FINAL_JOB_STATUSES = frozenset({"COMPLETED", "ERROR", "CANCELED"})
#: the budget question of YOLO comes as an approval of this pseudo-tool (widgets/approval_card.py)
BUDGET_TOOL = "yolo_budget"
#: what a turn that ended early says (by ``TurnComplete.reason``)
STOPPED = {
    "iteration_cap": "Turn stopped at the iteration cap",
    "budget": "Turn stopped at the YOLO budget",
    "doom_loop": "Turn paused: the agent kept repeating itself",
}
#: Unicode categories never written: controls (C0, C1, DEL), format characters (bidi
#: overrides, zero-width joiners), surrogates, private use, line and paragraph separators
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: at most one signal this often: research sub-agents can ask several approvals in a row
MIN_INTERVAL_S = 2.0


def clean(text: str, limit: int) -> str:
    """``text`` on one line with nothing a terminal could read as a control, at most ``limit``
    characters (cut with "…")."""
    chars = [" " if unicodedata.category(ch) in _DROPPED else ch for ch in text]
    flat = " ".join("".join(chars).replace(";", ",").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def choose(mode: str, env: Mapping[str, str]) -> str:
    """``bell``, ``osc9``, ``osc777`` or ``off`` for the configured ``mode``; ``auto`` looks at
    the environment (inside tmux, at what the outer terminal left in it)."""
    if mode != "auto":
        return mode if mode in ("bell", "osc9", "osc777", "off") else "bell"
    term = env.get("TERM", "").lower()
    program = env.get("TERM_PROGRAM", "").lower()
    if (program in ("ghostty", "wezterm") or term.startswith(("foot", "xterm-ghostty", "wezterm", "rxvt-unicode"))
            or env.get("GHOSTTY_RESOURCES_DIR") or env.get("WEZTERM_EXECUTABLE")):
        return "osc777"
    if (program == "iterm.app" or env.get("LC_TERMINAL") == "iTerm2" or env.get("ITERM_SESSION_ID")
            or env.get("WT_SESSION") or env.get("ConEmuPID")):
        return "osc9"
    return "bell"


def in_tmux(env: Mapping[str, str]) -> bool:
    return bool(env.get("TMUX"))


def tmux_passthrough(sequence: str) -> str:
    """``sequence`` inside tmux's DCS passthrough, every ESC in it doubled."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"


def sequence(kind: str, title: str, body: str, env: Mapping[str, str]) -> str:
    """The characters to write for ``kind`` (``bell``, ``osc9``, ``osc777``; "" for ``off``),
    the text cleaned, wrapped for tmux when inside it."""
    if kind == "bell":
        return BEL
    if kind == "osc9":
        seq = f"{ESC}]9;{clean(f'{title}: {body}', TITLE_MAX + BODY_MAX)}{BEL}"
    elif kind == "osc777":
        seq = f"{ESC}]777;notify;{clean(title, TITLE_MAX)};{clean(body, BODY_MAX)}{BEL}"
    else:
        return ""
    return tmux_passthrough(seq) if in_tmux(env) else seq


def describe(event: Event) -> str | None:
    """What the notification says about ``event``; None when it calls for none."""
    if isinstance(event, ApprovalRequired):
        items = event.items
        if not items:
            return None
        if items[0].tool == BUDGET_TOOL:
            return "YOLO paused at its budget cap: raise it or stop"
        more = f" and {len(items) - 1} more" if len(items) > 1 else ""
        return f"Approval needed: {items[0].tool}{more}"
    if isinstance(event, TurnComplete):
        if event.reason == "approval_pending":
            return None  # the approval already said so
        if event.reason in STOPPED:
            return STOPPED[event.reason]
        answer = (event.final_response or "").strip().partition("\n")[0]
        return f"Turn finished: {answer}" if answer else "Turn finished"
    if isinstance(event, JobUpdate) and event.status in FINAL_JOB_STATUSES:
        return f"Job {event.job_id} {event.detail or event.status.lower()}"
    return None


class TerminalNotifier:
    """What to write for each event, at most one signal per ``MIN_INTERVAL_S`` and one per
    ended job (a job's final status can come again, e.g. with its final cost)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._last = float("-inf")
        self._jobs_told: set[str] = set()

    def signal(self, event: Event, mode: str, env: Mapping[str, str]) -> str:
        """The characters to write for ``event`` under ``mode``; "" for nothing."""
        body = describe(event)
        if body is None:
            return ""
        if isinstance(event, JobUpdate):
            if event.job_id in self._jobs_told:
                return ""
            self._jobs_told.add(event.job_id)
        kind = choose(mode, env)
        now = self.clock()
        if kind == "off" or now - self._last < MIN_INTERVAL_S:
            return ""
        self._last = now
        return sequence(kind, TITLE, body, env)
