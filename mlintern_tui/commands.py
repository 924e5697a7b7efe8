"""Slash commands: one registry used by the prompt, /help and the command palette.

Later features add their commands with ``REGISTRY.add(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Awaitable, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from widgets.prompt import CommandHint

if TYPE_CHECKING:
    from mlintern_tui.app import MLInternApp

Handler = Callable[["MLInternApp", str], Awaitable[None]]

EFFORT_LEVELS = ("off", "minimal", "low", "medium", "high", "xhigh", "max")
MODES = ("ask", "auto", "yolo")
#: what each approval mode asks about, said when the mode changes (agent/policy.py decides)
MODE_HELP = {
    "ask": "also asks before shell commands, writes outside the working directory and MCP tools",
    "auto": "asks before jobs, paid sandboxes, Hub uploads and deletes, and destructive git operations",
    "yolo": "runs what auto asks about without asking, within the budget; scheduled jobs still ask",
}


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    palette: bool = True  # commands that need an argument still open with a prompt prefill

    @property
    def hint(self) -> CommandHint:
        return CommandHint(self.name, self.usage, self.help)


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, name: str, usage: str, help: str, palette: bool = True):
        def decorator(fn: Handler) -> Handler:
            self._commands[name] = Command(name, usage, help, fn, palette)
            return fn

        return decorator

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def all(self) -> list[Command]:
        return list(self._commands.values())

    def hints(self) -> tuple[CommandHint, ...]:
        return tuple(c.hint for c in self._commands.values())

    async def run(self, app: MLInternApp, text: str) -> bool:
        """Run ``/name args``; False if it is not a known command."""
        name, _, arg = text.strip().partition(" ")
        command = self._commands.get(name)
        if command is None:
            return False
        await command.handler(app, arg.strip())
        return True


REGISTRY = CommandRegistry()


@REGISTRY.add("/help", "/help", "List commands and keys")
async def _help(app: MLInternApp, arg: str) -> None:
    lines = [f"{c.usage:<20} {c.help}" for c in REGISTRY.all()]
    keys = ("enter send (while the agent works: into the running turn) · alt+enter keep it for after the turn · "
            "ctrl+j new line · ↑/↓ history · tab complete · esc interrupt · ctrl+p palette · "
            "pgup/pgdn scroll · ctrl+home/end top/bottom · ctrl+o expand last tool output · ctrl+y copy last answer · "
            "ctrl+l follow/pause output · f2 side panes · ctrl+r pending approvals · ctrl+t approval mode · "
            "f3 expand the last receipt · f4 experiment runs · ctrl+c twice or ctrl+q quit\n"
            "Approval card: y approve · n reject · f reject with feedback · a approve the batch · e edit · "
            "A/D always allow/deny (then p this project, u all projects) · esc leave pending\n"
            "Jobs: ctrl+g jobs view and back · ↑/↓ or [ ] select · c cancel · / search the log (n/N next/previous) · "
            "f follow/pause · esc back to the prompt\n"
            "MCP servers (/mcp): ↑/↓ select · r reconnect · e enable/disable · t or enter its tools · "
            "T trust the project's .mcp.json · esc close\n"
            "Trace preview: a accept and upload · m mask a pattern (ctrl+s also saves it) · enter mask what stands "
            "before the highlighted finding · n/esc not now (nothing uploaded)\n"
            "Experiment runs (/runs, f4): ↑/↓ select · space mark · c compare the marked (or this and the next) · "
            "s/S sort column · r reverse · x export CSV and Markdown · esc close\n"
            "Messages (alt+↑ from the prompt): ↑/↓ or k/j move · home/end first/last · p pin (kept through every "
            "compaction) · u unpin · y copy · esc or enter back to the prompt\n"
            "Compaction preview (/compact): enter or y compact · esc or n cancel · space list the messages\n"
            "Repetition guard card: s stop · h continue with a hint · m switch model and continue · c continue")
    await app.notice("info", "Commands:\n" + "\n".join(lines) + "\n\nKeys: " + keys)


@REGISTRY.add("/new", "/new", "Start a fresh conversation")
async def _new(app: MLInternApp, arg: str) -> None:
    from agent.protocol import New

    app.submit(New())
    await app.notice("info", "Started a new conversation.")


@REGISTRY.add("/clear", "/clear", "New conversation and clear the screen")
async def _clear(app: MLInternApp, arg: str) -> None:
    from agent.protocol import New

    app.submit(New())
    await app.conversation.clear_blocks()


@REGISTRY.add("/undo", "/undo", "Remove the last turn")
async def _undo(app: MLInternApp, arg: str) -> None:
    from agent.protocol import Undo

    app.submit(Undo())


@REGISTRY.add("/compact", "/compact [focus]", "Summarise older context: see what goes and what stays, then confirm")
async def _compact(app: MLInternApp, arg: str) -> None:
    if not app.engine_ready():
        return
    app.compaction.ask(arg or None)


@REGISTRY.add("/pin", "/pin <fact>", "Keep a fact through every compaction (it joins the system prompt)")
async def _pin(app: MLInternApp, arg: str) -> None:
    text = " ".join(arg.split())
    if not text:
        await app.notice("info", "Usage: /pin <fact>, e.g. /pin the eval set is test_clean.jsonl: never train on it. "
                                 "/unpin <fact> removes one.")
        return
    from agent.protocol import Pin

    app.submit(Pin(text=text))


@REGISTRY.add("/unpin", "/unpin <fact>|<n>", "Stop keeping a pinned fact or message (n: its number in /pins)")
async def _unpin(app: MLInternApp, arg: str) -> None:
    text = " ".join(arg.split())
    if not text:
        await app.notice("info", "Usage: /unpin <fact> with the fact as it was pinned, or /unpin <n> with its number "
                                 "in /pins.")
        return
    pins = app.conversation.pins
    if text.isdigit() and text not in pins:  # a number, unless a pin reads just that
        if not 1 <= int(text) <= len(pins):
            await app.notice("error", f"There is no pin {text}: /pins lists {len(pins)}." if pins else
                                      "Nothing is pinned.")
            return
        text = pins[int(text) - 1]
    from agent.protocol import Pin

    app.submit(Pin(text=text, remove=True))


#: how much of each pin /pins shows (a pinned message can run to a thousand characters)
PIN_LISTED_CHARS = 200


@REGISTRY.add("/pins", "/pins", "List what is pinned (kept through every compaction) and how to unpin it")
async def _pins(app: MLInternApp, arg: str) -> None:
    pins = app.conversation.pins
    if not pins:
        await app.notice("info", "Nothing is pinned. /pin <fact> keeps a fact through every compaction; alt+↑ selects "
                                 "a message in the conversation, and p pins it.")
        return
    lines = [f"Pinned ({len(pins)}), in the system prompt and kept through every compaction:"]
    for n, pin in enumerate(pins, 1):
        shown = pin if len(pin) <= PIN_LISTED_CHARS else f"{pin[:PIN_LISTED_CHARS - 1]}… ({len(pin):,} characters)"
        lines.append(f"{n}. {shown}  · /unpin {n}")
    lines.append("A pinned message also unpins with u on it (alt+↑ selects messages).")
    await app.notice("info", "\n".join(lines))


@REGISTRY.add("/runs", "/runs", "Experiment board: this project's training runs, sorted, compared, exported")
async def _runs(app: MLInternApp, arg: str) -> None:
    app.runs.open()


@REGISTRY.add("/queue", "/queue", "Queue messages for after the turn (toggle; else they join the running turn)")
async def _queue(app: MLInternApp, arg: str) -> None:
    app.queue_while_working = not app.queue_while_working
    await app.notice("info", "Messages typed while the agent works now wait for the turn to end. /queue again sends "
                             "them into the running turn." if app.queue_while_working else
                             "Messages typed while the agent works now join the running turn at its next step "
                             "(alt+enter still keeps one for after the turn).")


@REGISTRY.add("/resume", "/resume [id]", "Resume a saved session: pick one from the list, or give its id")
async def _resume(app: MLInternApp, arg: str) -> None:
    if arg:
        await app.resume_session(arg)
    else:
        app.show_resume_picker()


@REGISTRY.add("/rename", "/rename <title>", "Name this session (the resume list shows it)")
async def _rename(app: MLInternApp, arg: str) -> None:
    title = " ".join(arg.split())
    if not title:
        current = app.session_title
        await app.notice("info", "Usage: /rename <title>, e.g. /rename Qwen SFT on support tickets. "
                                 + (f"This session is “{current}”." if current else "This session has no title yet."))
        return
    from agent.protocol import Rename

    app.submit(Rename(title=title))


@REGISTRY.add("/model", "/model [id]", "Pick a model from a list with prices, or switch to <id>")
async def _model(app: MLInternApp, arg: str) -> None:
    if not arg:
        app.show_model_picker()
        return
    from agent.protocol import SetModel

    app.submit(SetModel(model=arg))


@REGISTRY.add("/mcp", "/mcp", "MCP servers: states, errors and tools; reconnect, enable, disable, trust")
async def _mcp(app: MLInternApp, arg: str) -> None:
    app.show_mcp_screen()


@REGISTRY.add("/effort", "/effort [level]", "Show or set reasoning effort")
async def _effort(app: MLInternApp, arg: str) -> None:
    if not arg:
        await app.notice("info", f"Reasoning effort: {app.status_info.effort or 'default'} (levels: {', '.join(EFFORT_LEVELS)})")
        return
    if arg not in EFFORT_LEVELS:
        await app.notice("error", f"Unknown effort {arg!r}; use one of {', '.join(EFFORT_LEVELS)}.")
        return
    from agent.protocol import SetEffort

    app.submit(SetEffort(effort=None if arg == "off" else arg))


@REGISTRY.add("/mode", "/mode [ask|auto|yolo]", "Show or set the approval mode (ctrl+t cycles)")
async def _mode(app: MLInternApp, arg: str) -> None:
    mode = arg.lower()
    if not mode:
        current = app.status_info.mode
        await app.notice("info", f"Approval mode: {current}\n" + "\n".join(
            f"{'▸' if m == current else ' '} {m:<5} {text}" for m, text in MODE_HELP.items())
            + "\nctrl+t cycles ask → auto → yolo; /yolo <dollars> sets the YOLO budget.")
        return
    if mode not in MODE_HELP:
        await app.notice("error", f"Unknown approval mode {arg!r}: use ask, auto or yolo.")
        return
    app.request_mode(mode)


@REGISTRY.add("/yolo", "/yolo [cap $]", "Toggle YOLO (auto-approve within the budget), or set its cap")
async def _yolo(app: MLInternApp, arg: str) -> None:
    cap = None
    if arg:
        try:
            cap = float(arg.lstrip("$"))
        except ValueError:
            await app.notice("error", f"/yolo takes a dollar cap, e.g. /yolo 2.50 (got {arg!r}).")
            return
    enabled = True if cap is not None else app.status_info.mode != "yolo"
    from agent.protocol import SetYolo

    app.submit(SetYolo(enabled=enabled, cap_usd=cap))


@REGISTRY.add("/status", "/status", "Model, mode, context and session facts")
async def _status(app: MLInternApp, arg: str) -> None:
    await app.notice("info", app.status_text())


@REGISTRY.add("/cost", "/cost", "Session cost by kind, model and job")
async def _cost(app: MLInternApp, arg: str) -> None:
    await app.show_costs()


@REGISTRY.add("/jobs", "/jobs [[cancel] id]", "Jobs view; select a job, or ask to cancel it")
async def _jobs(app: MLInternApp, arg: str) -> None:
    await app.jobs_command(arg)


VISIBILITIES = ("off", "private", "public")


@REGISTRY.add("/share-traces", "/share-traces [private|public|off]",
              "Where this session's redacted trace goes (a preview first); no argument: where it goes now")
async def _share_traces(app: MLInternApp, arg: str) -> None:
    visibility = arg.lower()
    if visibility and visibility not in VISIBILITIES:
        await app.notice("error", f"Unknown place {arg!r}: use /share-traces private, public or off "
                                  "(or no argument to see where traces go).")
        return
    if not app.engine_ready():
        return
    app.traces.ask(visibility or None)


@REGISTRY.add("/feedback", "/feedback good|bad [comment]", "Tell how this session went; kept with it")
async def _feedback(app: MLInternApp, arg: str) -> None:
    rating, _, comment = arg.partition(" ")
    if rating.lower() not in ("good", "bad"):
        await app.notice("info" if not arg else "error",
                         "Usage: /feedback good|bad [comment], e.g. /feedback bad it ignored my dataset's test split.")
        return
    from agent.protocol import Feedback

    app.submit(Feedback(rating=rating.lower(), comment=" ".join(comment.split())))  # type: ignore[arg-type]


@REGISTRY.add("/quit", "/quit", "Quit")
async def _quit(app: MLInternApp, arg: str) -> None:
    await app.action_quit()


class SlashCommandProvider(Provider):
    """The registry in the command palette (ctrl+p)."""

    async def discover(self) -> Hits:
        for command in REGISTRY.all():
            yield DiscoveryHit(command.usage, partial(self._run, command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in REGISTRY.all():
            score = matcher.match(f"{command.usage} {command.help}")
            if score > 0:
                yield Hit(score, matcher.highlight(command.usage), partial(self._run, command), help=command.help)

    async def _run(self, command: Command) -> None:
        app = self.app
        await command.handler(app, "")  # type: ignore[arg-type]
        if command.name in ("/effort", "/rename", "/feedback", "/pin", "/unpin"):  # /model opens its picker instead
            # the current value is shown; the new one is typed in the prompt
            app.prefill_prompt(command.name + " ")  # type: ignore[attr-defined]
