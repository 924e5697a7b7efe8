"""The full-screen app under a fast stream, measured the way the issue's table was.

    python bench/tui_stream.py [--runs 3] [--tokens 20000] [--rate 2000] [--json out.json]

Setup: the installed ``mlintern`` command runs in a private tmux server at 120x36 against a
loopback OpenAI-compatible server (tests/fakes/openai_server.py) that streams a generated
~20,000-token markdown answer (headings, paragraphs, lists, tables, fenced code) at 2,000
tokens/s, one token per SSE event by default, as OpenAI-style providers send them. The
floor for that stream is tokens/rate (10 s) plus request latency: the issue says 10.05 s.

Measured per run:
- startup: ``tmux new`` until a marker typed into the pane shows in the prompt box
  (usable prompt), and until the status bar names the model without "(loading)" (ready);
- CPU over the stream: utime+stime of the app (and any children) between the Enter that
  sends the prompt and the receipt line ("turn: ...") appearing on screen;
- key echo: one printable key every ~300 ms from Enter until the receipt shows, time until
  the prompt box shows it; the same while idle gives the app's own floor. The screen is
  read through a tmux control-mode client every ~2 ms; its round trip (~0.1 ms, printed)
  plus the poll interval is the measuring floor;
- peak memory: VmHWM of the app at the end of the stream (and its RSS before Enter).

Also printed: when the model server sent its last byte against when the receipt showed
(how far the app fell behind), the app's bytes written to the terminal, the CPU of tmux,
of this script and of everything else on the machine (other load skews the numbers), and
whether the answer's last line is on screen at the end. The pane is read with
``capture-pane`` only; nothing in the app is patched.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.openai_server import ScriptedLLMServer, Text, Usage, _Handler  # noqa: E402

WIDTH, HEIGHT = 120, 36
SESSION = "bench"
# a local OpenAI-compatible server (what vLLM / llama.cpp / ollama users run); pass
# --model openai/bench-model to go through litellm's streaming path instead
MODEL = "vllm/bench-model"
PROMPT = "Write the fine-tuning runbook in markdown."
CLOSING = "End of runbook: every step above was checked on the loopback model."
#: the window after the answer's closing line shows in which the app's CPU is counted (as in
#: the peers' table: ``../shared/peers/``)
AFTER_WINDOW_S = 3.0
PLACEHOLDER = "Ask the agent"
FIRST_WORDS = "Fine-tuning runbook"  # the answer's heading; build_answer starts with it
APP = Path(sys.executable).parent / "mlintern"

# --------------------------------------------------------------------------- the answer


def encoder():
    # litellm ships cl100k_base in its package; pointing tiktoken at it avoids a download
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        spec = importlib.util.find_spec("litellm")
        if spec and spec.submodule_search_locations:
            bundled = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


WORDS = ("learning rate warmup schedule gradient checkpointing tokenizer padding sequence length batch "
         "size evaluation split validation loss perplexity throughput memory footprint mixed precision "
         "bf16 optimizer state LoRA rank adapter merge checkpoint shard dataset card licence filter "
         "dedup near-duplicate contamination benchmark accuracy regression baseline seed variance "
         "eval harness few-shot prompt template chat format special tokens EOS truncation").split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(9, 22))]
    if rng.random() < 0.4:
        words[rng.randrange(len(words))] = f"`{rng.choice(WORDS)}`"
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"**{rng.choice(WORDS)}**"
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))


def _table(rng: random.Random) -> str:
    rows = ["| Run | LR | Batch | Steps | Eval loss | Accuracy |", "|---|---:|---:|---:|---:|---:|"]
    for i in range(rng.randint(4, 8)):
        rows.append(f"| r{i:02d} | {rng.choice(['1e-5', '2e-5', '3e-5', '5e-5'])} | {rng.choice([8, 16, 32, 64])} "
                    f"| {rng.randint(5, 60) * 100} | {rng.uniform(0.8, 2.5):.3f} | {rng.uniform(55, 92):.1f}% |")
    return "\n".join(rows)


def _code(rng: random.Random, n: int) -> str:
    kind = n % 3
    if kind == 0:
        body = [
            "from datasets import load_dataset",
            "from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments",
            "",
            f'tok = AutoTokenizer.from_pretrained("org/base-{rng.randint(1, 9)}b")',
            f'ds = load_dataset("org/instructions-{n}", split="train")',
            "",
            "def encode(batch):",
            f"    return tok(batch['text'], truncation=True, max_length={rng.choice([1024, 2048, 4096])})",
            "",
            "ds = ds.map(encode, batched=True, remove_columns=ds.column_names)",
            "args = TrainingArguments(",
            f'    output_dir="out/run-{n}",',
            f"    learning_rate={rng.choice(['1e-5', '2e-5', '3e-5'])},",
            f"    per_device_train_batch_size={rng.choice([4, 8, 16])},",
            f"    gradient_accumulation_steps={rng.choice([1, 2, 4, 8])},",
            "    bf16=True,",
            "    logging_steps=10,",
            ")",
        ]
        for step in range(rng.randint(4, 10)):
            body.append(f"print(f'step {step * 100}: loss {{{rng.uniform(0.5, 3):.4f}}}')  # checkpoint {step}")
        return "```python\n" + "\n".join(body) + "\n```"
    if kind == 1:
        body = [f"hf jobs run --flavor {rng.choice(['a10g-large', 'a100-large', 'l4x1'])} \\",
                f"  --timeout {rng.randint(1, 8)}h python train.py --config configs/run-{n}.yaml"]
        body += [f"grep -c 'loss' logs/run-{n}-{i}.txt | tee -a summary.txt" for i in range(rng.randint(3, 8))]
        return "```bash\n" + "\n".join(body) + "\n```"
    body = [f"run_name: sft-{n}", "model:", f"  id: org/base-{rng.randint(1, 9)}b", "  dtype: bfloat16",
            "lora:", f"  r: {rng.choice([8, 16, 32, 64])}", f"  alpha: {rng.choice([16, 32, 64])}",
            "  target_modules: [q_proj, k_proj, v_proj, o_proj]", "train:",
            f"  epochs: {rng.randint(1, 4)}", f"  warmup_ratio: {rng.choice([0.03, 0.05, 0.1])}"]
    return "```yaml\n" + "\n".join(body) + "\n```"


def build_answer(target_tokens: int, enc, seed: int = 7) -> tuple[str, int]:
    """A deterministic runbook-style markdown answer of ``target_tokens`` tokens (within ~30)."""
    rng = random.Random(seed)
    parts = ["# Fine-tuning runbook", _paragraph(rng)]
    n = 0
    while len(enc.encode("\n\n".join(parts))) < target_tokens - 1500:
        n += 1
        parts.append(f"## {n}. {rng.choice(WORDS).capitalize()} and {rng.choice(WORDS)}")
        parts += [_paragraph(rng) for _ in range(rng.randint(1, 3))]
        parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(3, 6))))
        if n % 2 == 0:
            parts.append(_table(rng))
        parts.append(_code(rng, n))
        if n % 3 == 0:
            parts.append(f"### Checks for step {n}")
            parts.append("\n".join(f"{i}. {_sentence(rng)}" for i in range(1, rng.randint(3, 6))))
        parts.append(_paragraph(rng))
    while len(enc.encode("\n\n".join(parts))) < target_tokens - 150:
        parts.append(_paragraph(rng))
    while len(enc.encode("\n\n".join(parts))) < target_tokens - 20:
        parts[-1] += " " + _sentence(rng)
    parts.append(CLOSING)
    text = "\n\n".join(parts)
    return text, len(enc.encode(text))


# --------------------------------------------------------------------------- the model


class Pacer:
    """Sends SSE events on an absolute schedule. ``Text(delay=...)`` sleeps a relative
    delay per chunk, and each sleep overshoots by 80-190 us here: at 0.5 ms per event
    that stretches a 10 s stream by 15-40%, which would be charged to the app."""

    def __init__(self, interval: float):
        self.interval = interval
        self.sent = 0
        self.started: float | None = None
        self.finished: float | None = None
        self.cpu = 0.0  # the serving thread's CPU time, part of the bench's own


class PacedHandler(_Handler):
    def _write_chunk(self, payload: bytes) -> None:
        pacer: Pacer = self.server.owner.pacer
        if payload.startswith(b"data: {"):
            if pacer.started is None:
                pacer.started = time.perf_counter()
                pacer.cpu = -time.thread_time()
            else:
                delay = pacer.started + pacer.sent * pacer.interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            pacer.sent += 1
        super()._write_chunk(payload)
        if payload == b"":
            pacer.finished = time.perf_counter()
            pacer.cpu += time.thread_time()


def start_model(answer: str, tokens: int, rate: float, tokens_per_chunk: int) -> tuple[ScriptedLLMServer, int]:
    chunk_chars = max(1, round(len(answer) * tokens_per_chunk / tokens))
    events = -(-len(answer) // chunk_chars)
    server = ScriptedLLMServer(model_name=MODEL.split("/", 1)[1]).start()
    server._httpd.RequestHandlerClass = PacedHandler
    server.pacer = Pacer(tokens / rate / events)
    server.script(lambda body: Text(answer, chunk_chars=chunk_chars,
                                    usage=Usage(max(1, len(json.dumps(body.get("messages", []))) // 4), tokens)))
    return server, events


# --------------------------------------------------------------------------- tmux


class Tmux:
    """A private tmux server, read and driven through one control-mode client: a
    ``capture-pane`` round trip costs ~0.2 ms there against ~3 ms for a new process."""

    def __init__(self, workdir: Path):
        self.socket = f"mlintern-bench-{os.getpid()}"
        self.conf = workdir / "tmux.conf"
        self.conf.write_text("set -g default-terminal tmux-256color\n")
        self.ctl: subprocess.Popen | None = None
        self.socket_path = ""

    def new(self, command: str, cwd: Path) -> None:
        # window-size manual keeps the control client from resizing the window; set in the
        # config file instead it makes this tmux (3.3a) exit at start
        done = subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), "new-session", "-d", "-s", SESSION,
                               "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd), command,
                               ";", "set-option", "-g", "window-size", "manual"], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"tmux new-session failed: {done.stderr.strip()}")
        self.ctl = subprocess.Popen(["tmux", "-L", self.socket, "-C", "attach", "-t", SESSION],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        # unbuffered stdin so each command goes out at once; buffered reads, or readline
        # costs one syscall per byte of every screen
        self.out = io.BufferedReader(self.ctl.stdout, 1 << 16)
        self._block()  # the attach's own reply
        self.cmd("refresh-client -f no-output")  # no %output copy of everything the app draws
        self.socket_path = self.cmd("display-message -p '#{socket_path}'")[0]

    def _block(self) -> list[str]:
        out: list[str] = []
        inside = False
        while True:
            raw = self.out.readline()
            if not raw:
                raise RuntimeError("the tmux control client went away (did the app exit?)")
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("%begin"):
                inside, out = True, []
            elif inside and (line.startswith("%end") or line.startswith("%error")):
                if line.startswith("%error"):
                    raise RuntimeError(f"tmux: {' '.join(out)}")
                return out
            elif inside:
                out.append(line)

    def cmd(self, command: str) -> list[str]:
        self.ctl.stdin.write(command.encode() + b"\n")
        return self._block()

    def screen(self) -> list[str]:
        return self.cmd(f"capture-pane -p -t {SESSION}")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.cmd(f"send-keys -t {SESSION} " + ("-l " if literal else "") + " ".join(keys))

    def pane_pid(self) -> int:
        return int(self.cmd(f"display-message -p -t {SESSION} '#{{pane_pid}}'")[0])

    def server_pid(self) -> int:
        return int(self.cmd("display-message -p '#{pid}'")[0])

    def close(self) -> None:
        if self.ctl is not None:
            self.ctl.stdin.close()
            self.ctl.kill()
            self.ctl.wait()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if self.socket_path:  # kill-server leaves the socket file behind
            Path(self.socket_path).unlink(missing_ok=True)


_BOX = re.compile(r"│ (.*?) │")


def prompt_text(lines: list[str]) -> str | None:
    """The prompt box's text ("" when the placeholder shows), None if it is not drawn yet."""
    for bottom in range(len(lines) - 1, -1, -1):
        if lines[bottom].lstrip().startswith("╰"):
            break
    else:
        return None
    inner: list[str] = []
    for row in range(bottom - 1, -1, -1):
        line = lines[row].lstrip()
        if line.startswith("╭"):
            text = " ".join(reversed(inner)).strip()
            return "" if text.startswith(PLACEHOLDER) else text
        match = _BOX.match(line)
        if match is None:
            return None
        inner.append(match.group(1).strip())
    return None


def status_line(lines: list[str]) -> str:
    return lines[-2] if len(lines) >= 2 else ""


# --------------------------------------------------------------------------- the app process


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """utime+stime of ``pid``; with ``tree`` also of its live descendants and of the
    children it has already reaped."""
    total = sum(int(f) for f in _stat(pid)[11:15 if tree else 13])
    for child in _tree(pid)[1:] if tree else []:
        try:
            total += sum(int(f) for f in _stat(child)[11:13])
        except OSError:  # it exited meanwhile; its time is in the parent's cutime now
            pass
    return total / os.sysconf("SC_CLK_TCK")


def _sleep_until_perf(t: float) -> None:
    left = t - time.perf_counter()
    if left > 0:
        time.sleep(left)


def thread_cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` in ns (schedstat: not rounded to 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            pass
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, to tell other load from ours."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), sum(fields) / os.sysconf("SC_CLK_TCK")


def written_mb(pid: int) -> float:
    # wchar counts every write(); the app writes almost only to its terminal
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1]) / 1e6
    return 0.0


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def app_pid(pane_pid: int) -> int:
    # `env ... mlintern` is exec'd by the pane's shell, but follow a wrapper if there is one
    pid = pane_pid
    for _ in range(5):
        if "python" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[0]:
            return pid
        kids = _tree(pid)[1:]
        if not kids:
            break
        pid = kids[0]
    return pane_pid


# --------------------------------------------------------------------------- one run


def _quote(text: str) -> str:
    if "'" in text:
        raise ValueError(f"cannot send a single quote through tmux here: {text!r}")
    return f"'{text}'"


class Watch:
    """Everything worth noticing on screen while the answer streams."""

    def __init__(self, pid: int):
        self.pid = pid
        self.first_text: float | None = None
        self.receipt: float | None = None
        self.cpu_at_receipt: float | None = None
        #: when the answer's closing line showed, and the app's thread CPU (ns) then
        self.closing: float | None = None
        self.ns_at_closing: int | None = None
        self.problems: list[str] = []
        self.busy = False
        self.idle: float | None = None  # the status bar dropped "working…"
        self.cpu_timeline: list[tuple[float, float]] = []
        self.screens: list[list[str]] = []

    def see(self, lines: list[str], now: float) -> None:
        if not self.cpu_timeline or now - self.cpu_timeline[-1][0] >= 0.5:
            self.cpu_timeline.append((now, cpu_seconds(self.pid)))
            self.screens.append(lines)
        if self.first_text is None and any(FIRST_WORDS in line for line in lines):
            self.first_text = now
        if self.closing is None and CLOSING in conversation_text(lines):
            self.ns_at_closing = thread_cpu_ns(self.pid)
            self.closing = now
        if self.receipt is None and shows_receipt(lines):
            self.cpu_at_receipt = cpu_seconds(self.pid)
            self.receipt = now
        working = "working…" in status_line(lines)
        self.busy = self.busy or working
        if self.busy and not working and self.idle is None:
            self.idle = now
        note_problems(lines, self.problems)



#: what on screen suggests something went wrong (printed after a bench's table)
PROBLEM = re.compile(r"✗|Traceback|Exception|[Ee]rror")


def conversation_text(lines: list[str]) -> str:
    """The left column's words on one line (the conversation wraps a sentence over lines)."""
    split = lines[0].find("╭─ Plan") if lines and "╭─ Plan" in lines[0] else WIDTH
    return " ".join(" ".join(line[:split].split()) for line in lines)


def shows_receipt(lines: list[str]) -> bool:
    """The turn's receipt line ("turn: …") is on screen: the turn is over."""
    return any(line.lstrip().startswith("turn: ") for line in lines)


class UntilReceipt:
    """The screens from Enter until the turn's receipt shows, then until the keys the echo
    probe sent show (5 s at the most): ``for lines, now in watch:`` reads the pane every
    ``run.poll`` s, gives each screen to ``probe`` first, and raises past ``timeout`` s;
    ``watch.receipt`` is when the receipt showed."""

    def __init__(self, tm, run, probe, t_enter: float, timeout: float):
        self.tm, self.run, self.probe, self.t_enter, self.timeout = tm, run, probe, t_enter, timeout
        self.receipt: float | None = None

    def __iter__(self):
        while self.receipt is None or (self.probe.pending and time.perf_counter() - self.receipt < 5):
            lines = self.tm.screen()
            now = time.perf_counter()
            if now - self.t_enter > self.timeout:
                raise RuntimeError(f"no receipt {self.timeout:.0f} s after Enter:\n" + "\n".join(lines))
            self.probe.see(lines, now, typing=self.receipt is None)
            yield lines, now
            if self.receipt is None and shows_receipt(lines):
                self.receipt = now
            time.sleep(self.run.poll)


def note_problems(lines: list[str], problems: list[str], pattern: re.Pattern[str] = PROBLEM) -> None:
    """Adds each line on screen that matches ``pattern`` to ``problems``, once."""
    for line in lines:
        if pattern.search(line) and line.strip() not in problems:
            problems.append(line.strip())


class EchoProbe:
    """Keys go out on a fixed cadence whether or not the last one has shown, as a person
    types; each one's echo is the first screen whose prompt holds it. Call ``see`` with
    every screen read; keys still in ``pending`` at the end never showed."""

    LETTERS = "abcdefghijklmnoprstuvwy"

    def __init__(self, run: "Run", interval: float, t0: float):
        self.run = run
        self.interval = interval
        self.t0 = t0
        self.echo: list[float] = []  # seconds until shown
        self.echo_at: list[float] = []  # when each shown key was sent, from t0
        self.pending: list[tuple[int, float]] = []  # (length of the prompt once shown, sent at)
        self.sent = ""
        self.last_key = t0

    def see(self, lines: list[str], now: float, typing: bool = True, watch: "Watch | None" = None) -> None:
        shown = prompt_text(lines) or ""
        pending, sent = self.pending, self.sent
        while pending and len(shown) >= pending[0][0] and shown.startswith(sent[: pending[0][0]]):
            self.echo.append(now - pending[0][1])
            self.echo_at.append(pending.pop(0)[1] - self.t0)
        if typing and now - self.last_key >= self.interval:
            if len(sent) >= 40 and not pending:  # short of where the prompt would wrap
                self.run.clear(watch)
                self.sent = ""
            elif len(sent) < 40:
                self.sent += self.LETTERS[len(self.echo_at + pending) % len(self.LETTERS)]
                self.last_key = time.perf_counter()
                self.run.tm.keys(_quote(self.sent[-1]), literal=True)
                pending.append((len(self.sent), self.last_key))


class Run:
    def __init__(self, tm: Tmux, poll: float, timeout: float):
        self.tm = tm
        self.poll = poll
        self.timeout = timeout
        self.typed = ""

    def wait_prompt(self, expect: str, since: float, watch: Watch | None = None, limit: float = 3.0) -> float | None:
        while True:
            lines = self.tm.screen()
            now = time.perf_counter()
            if watch is not None:
                watch.see(lines, now)
            if prompt_text(lines) == expect:
                return now - since
            if now - since > limit:
                return None
            time.sleep(self.poll)

    def key(self, char: str, watch: Watch | None = None) -> float | None:
        """Type one printable key; the time until the prompt box shows it (None: lost)."""
        t = time.perf_counter()
        self.tm.keys(_quote(char), literal=True)
        latency = self.wait_prompt(self.typed + char, t, watch)
        self.typed = self.typed + char if latency is not None else self.typed
        if latency is None or len(self.typed) >= 12:
            self.clear(watch)
        return latency

    def clear(self, watch: Watch | None = None) -> None:
        if prompt_text(self.tm.screen()) == "":
            # Nothing to clear, and a ctrl+u sent now could not be seen to land: Textual runs
            # a bound key once the event has bubbled up to the app, so it can be applied
            # after printable keys typed right behind it and eat their start.
            self.typed = ""
            return
        for _ in range(5):
            self.tm.keys("C-u")
            if self.wait_prompt("", time.perf_counter(), watch) is not None:
                self.typed = ""
                return
        raise RuntimeError("could not clear the prompt:\n" + "\n".join(self.tm.screen()))

    def startup(self, command: str, cwd: Path) -> dict:
        marker = "qzx"
        t0 = time.perf_counter()
        self.tm.new(command, cwd)
        first_frame = usable = ready = None
        sent = None
        while time.perf_counter() - t0 < self.timeout:
            lines = self.tm.screen()
            now = time.perf_counter()
            text = prompt_text(lines)
            if first_frame is None and text is not None:
                first_frame = now - t0
            if usable is None and text and marker in text:
                usable = now - t0
            status = status_line(lines)
            if ready is None and MODEL.split("/", 1)[1] in status and "(loading)" not in status:
                ready = now - t0
            if usable is not None and ready is not None:
                break
            # typed ahead once, then again every 250 ms in case the app dropped keys it got
            # before its prompt existed
            if usable is None and (sent is None or now - sent > 0.25):
                self.tm.keys(marker, literal=True)
                sent = now
            time.sleep(self.poll)
        else:
            raise RuntimeError(f"the app did not become usable within {self.timeout:.0f} s:\n" + "\n".join(self.tm.screen()))
        self.clear()
        return {"first_frame_s": first_frame, "usable_s": usable, "ready_s": ready}

    def stream(self, pid: int, tmux_pid: int, server: ScriptedLLMServer, interval: float) -> dict:
        self.tm.keys(_quote(PROMPT), literal=True)
        if self.wait_prompt(PROMPT, time.perf_counter()) is None:
            raise RuntimeError("the prompt text did not show in the prompt box:\n" + "\n".join(self.tm.screen()))
        watch = Watch(pid)
        rss0 = memory_mb(pid, "VmRSS")
        cpu0, tmux0, out0, busy0 = cpu_seconds(pid), cpu_seconds(tmux_pid, tree=False), written_mb(pid), machine_busy()
        me0 = sum(os.times()[:2])
        t_enter = time.perf_counter()
        self.tm.keys("Enter")
        probe = EchoProbe(self, interval, t_enter)
        at_receipt = None
        while watch.receipt is None or (probe.pending and time.perf_counter() - watch.receipt < 5):
            lines = self.tm.screen()
            now = time.perf_counter()
            watch.see(lines, now)
            if watch.receipt is not None and at_receipt is None:
                at_receipt = cpu_seconds(tmux_pid, tree=False), written_mb(pid), machine_busy(), sum(os.times()[:2])
            if now - t_enter > self.timeout:
                raise RuntimeError(f"no receipt {self.timeout:.0f} s after Enter:\n" + "\n".join(lines))
            probe.see(lines, now, typing=watch.receipt is None, watch=watch)
            time.sleep(self.poll)
        echo, echo_at, lost = probe.echo, probe.echo_at, len(probe.pending)
        tmux1, out1, busy1, me1 = at_receipt
        cpu1 = watch.cpu_at_receipt
        hwm = memory_mb(pid)
        while watch.idle is None and time.perf_counter() - watch.receipt < 10:
            watch.see(self.tm.screen(), time.perf_counter())
            time.sleep(self.poll)
        after_ms = None
        if watch.closing is not None:  # the peers' column: what the app does once the answer is on screen
            _sleep_until_perf(watch.closing + AFTER_WINDOW_S)
            after_ms = (thread_cpu_ns(pid) - watch.ns_at_closing) / 1e6
        idle0 = cpu_seconds(pid)
        time.sleep(2.0)
        idle_cpu = (cpu_seconds(pid) - idle0) / 2.0
        lines = self.tm.screen()
        left = conversation_text(lines)
        pacer = server.pacer
        return {
            "stream_wall_s": watch.receipt - t_enter,
            "not_busy_s": None if watch.idle is None else watch.idle - t_enter,
            "first_text_s": None if watch.first_text is None else watch.first_text - t_enter,
            "server_start_s": None if pacer.started is None else pacer.started - t_enter,
            "server_stream_s": None if pacer.finished is None else pacer.finished - pacer.started,
            "server_done_to_receipt_s": None if pacer.finished is None else watch.receipt - pacer.finished,
            "cpu_stream_s": cpu1 - cpu0,
            "tmux_cpu_s": tmux1 - tmux0,
            "bench_cpu_s": me1 - me0,
            "model_cpu_s": pacer.cpu,
            "other_cpu_s": (busy1[0] - busy0[0]) - (cpu1 - cpu0) - (tmux1 - tmux0) - (me1 - me0),
            "cores": os.cpu_count(),
            "machine_busy_pct": 100 * (busy1[0] - busy0[0]) / (busy1[1] - busy0[1]),
            "written_mb": out1 - out0,
            "echo_ms": [x * 1000 for x in echo],
            "echo_at_s": echo_at,
            "cpu_timeline": [(round(t - t_enter, 2), round(c - cpu0, 2)) for t, c in watch.cpu_timeline],
            "screens": watch.screens,
            "echo_lost": lost,
            "peak_mb": hwm,
            "rss_before_mb": rss0,
            "idle_cpu_after_pct": idle_cpu * 100,
            "after_answer_cpu_ms": after_ms,
            "closing_line_on_screen": CLOSING in left,
            "requests": len(server.requests),
            "problems": watch.problems,
            "final_screen": lines,
        }

    def quit(self, pid: int) -> bool:
        self.tm.keys("C-q")
        end = time.time() + 5
        while time.time() < end:
            try:
                if _stat(pid)[0] == "Z":
                    return True
            except OSError:  # gone, reaped by the tmux server
                return True
            time.sleep(0.05)
        return False


def wait_for_quiet(limit_s: float, busy_pct: float = 25.0) -> float:
    """Wait (up to ``limit_s``) for a second in which the machine is mostly idle: other
    load takes cores from the app and tmux. Returns the last second's busy percentage."""
    end = time.monotonic() + limit_s
    while True:
        b0 = machine_busy()
        time.sleep(1.0)
        b1 = machine_busy()
        pct = 100 * (b1[0] - b0[0]) / max(1e-9, b1[1] - b0[1])
        if pct <= busy_pct or time.monotonic() >= end:
            return pct



def app_command(home: Path, base_url: str, model: str, extra: str = "") -> str:
    """The shell command the pane runs: the installed app against the loopback model."""
    # MLINTERN_BENCH_PROFILE=out.prof runs the app under cProfile (slower; for finding hot
    # spots); MLINTERN_BENCH_WRAPPER="python wrap.py" runs it through a script of yours
    profile = os.environ.get("MLINTERN_BENCH_PROFILE")
    app = os.environ.get("MLINTERN_BENCH_WRAPPER") or (
        f"{sys.executable} -m cProfile -o {profile} -m mlintern_tui.cli" if profile else str(APP))
    return (f"env MLINTERN_HOME={home} OPENAI_BASE_URL={base_url} OPENAI_API_KEY=sk-bench "
            f"VLLM_BASE_URL={base_url} TERM=tmux-256color COLORTERM=truecolor {app} -m {model}"
            + (f" {extra}" if extra else ""))


def one_run(answer: str, tokens: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        (work / "cwd").mkdir()
        config = {}
        if args.no_local_echo:  # keys echo only when the UI loop gets to them
            config["local_echo"] = False
        if args.no_frame_pacing:  # every tick of the frame timer draws
            config["frame_pacing"] = False
        if config:
            (work / "home" / "config.json").write_text(json.dumps(config))
        server, events = start_model(answer, tokens, args.rate, args.tokens_per_chunk)
        tm = Tmux(work)
        run = Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            command = app_command(work / "home", server.base_url, args.model)
            result = run.startup(command, work / "cwd")
            pid = app_pid(tm.pane_pid())
            t = time.perf_counter()
            tm.screen()
            result["capture_ms"] = (time.perf_counter() - t) * 1000
            idle = [run.key(c) for c in "abcdefghij"]
            run.clear()
            result["idle_echo_ms"] = [a * 1000 for a in idle if a is not None]
            result.update(run.stream(pid, tm.server_pid(), server, args.echo_every))
            result["sse_events"] = events
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            tm.close()
            server.stop()


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.0f}/{max(values):.0f} ms"


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The options every tmux bench shares."""
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--echo-every", type=float, default=0.3, help="seconds between key-echo samples")
    p.add_argument("--poll-ms", type=float, default=2.0, help="sleep between screen reads")
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for other load to settle before a run")
    p.add_argument("--json", type=Path, help="write every run's numbers (and screens) here")


def preflight() -> bool:
    """Say why the bench cannot run here, if it cannot."""
    if shutil.which("tmux") is None:
        print("error: tmux is not installed; this bench drives the app in a tmux pane", file=sys.stderr)
        return False
    if not APP.exists():
        print(f"error: {APP} not found; install the package into this interpreter's environment", file=sys.stderr)
        return False
    return True


def run_repeatedly(args: argparse.Namespace, one) -> list[dict]:
    """``args.runs`` runs of ``one()``, each after the machine has settled."""
    runs = []
    for i in range(args.runs):
        busy = wait_for_quiet(args.quiet_wait)
        print(f"run {i + 1}/{args.runs} (machine {busy:.0f}% busy before it) …", file=sys.stderr, flush=True)
        runs.append(one())
    return runs


def print_table(title: str, rows: list, runs: list[dict], col: int | None = None) -> None:
    """One row per measurement, one column per run (as wide as the widest cell when ``col``
    is not given)."""
    if col is None:
        col = max(len(cell(r)) for _, cell in rows for r in runs) + 3
    width = max(len(name) for name, _ in rows) + 2
    print(title)
    print("".ljust(width) + "".join(f"run {i + 1}".ljust(col) for i in range(len(runs))))
    for name, cell in rows:
        print(name.ljust(width) + "".join(cell(r).ljust(col) for r in runs))


def report(runs: list[dict], tokens: int, rate: float) -> None:
    floor = tokens / rate
    rows = [
        ("startup to usable prompt", lambda r: f"{r['usable_s']:.2f} s"),
        ("  first frame / model ready", lambda r: f"{r['first_frame_s']:.2f} / {r['ready_s']:.2f} s"),
        ("CPU over the stream", lambda r: f"{r['cpu_stream_s']:.1f} s"),
        ("key echo streaming, med/max", lambda r: _ms(r["echo_ms"]) + f" (n={len(r['echo_ms'])}"
                                                  + (f", {r['echo_lost']} never shown)" if r["echo_lost"] else ")")),
        ("  key echo idle", lambda r: _ms(r["idle_echo_ms"])),
        ("peak memory (VmHWM)", lambda r: f"{r['peak_mb']:.0f} MB (RSS {r['rss_before_mb']:.0f} MB before Enter)"),
        (f"stream wall (floor {floor + 0.05:.2f} s)", lambda r: f"{r['stream_wall_s']:.2f} s"),
        ("  server sent / receipt lag", lambda r: f"{_s(r['server_stream_s'])} / {_s(r['server_done_to_receipt_s'])}"),
        ("  first byte sent / on screen", lambda r: f"{_s(r['server_start_s'])} / {_s(r['first_text_s'])}"),
        ("  status idle after Enter", lambda r: _s(r["not_busy_s"])),
        ("app output to the terminal", lambda r: f"{r['written_mb']:.1f} MB"),
        ("CPU tmux / bench (model) / other", lambda r: f"{r['tmux_cpu_s']:.1f} / {r['bench_cpu_s']:.1f} "
                                                       f"({r['model_cpu_s']:.1f}) / {r['other_cpu_s']:.1f} s"),
        ("machine busy over stream", lambda r: f"{r['machine_busy_pct']:.0f}% of {r['cores']} cores"),
        ("app CPU in the 3 s after the answer", lambda r: "—" if r.get("after_answer_cpu_ms") is None
                                                   else f"{r['after_answer_cpu_ms']:.1f} ms"),
        ("app CPU idle after stream", lambda r: f"{r['idle_cpu_after_pct']:.0f}%"),
        ("last line of answer shown", lambda r: "yes" if r["closing_line_on_screen"] else "NO"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    print_table(f"\nmlintern TUI, tmux {WIDTH}x{HEIGHT}, {tokens:,} tokens at {rate:,.0f} tok/s "
                f"({runs[0]['sse_events']:,} SSE events), screen read every ~{runs[0]['capture_ms']:.1f} ms + poll",
                rows, runs, 34)
    for i, r in enumerate(runs, 1):
        if r["problems"]:
            print(f"run {i}: suspicious lines on screen: {r['problems'][:5]}")
        if r["requests"] != 1:
            print(f"run {i}: the app made {r['requests']} model requests (expected 1)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(p)
    p.add_argument("--model", default=MODEL, help="model id the app runs with (vllm/… streams directly, openai/… via litellm)")
    p.add_argument("--tokens", type=int, default=20_000, help="answer length in cl100k tokens")
    p.add_argument("--rate", type=float, default=2_000, help="tokens per second")
    p.add_argument("--tokens-per-chunk", type=int, default=1, help="tokens per SSE event")
    p.add_argument("--no-local-echo", action="store_true", help="run the app with local_echo off (for an A/B)")
    p.add_argument("--no-frame-pacing", action="store_true", help="run the app with frame_pacing off (for an A/B)")
    args = p.parse_args()
    if not preflight():
        return 2
    sys.setswitchinterval(0.0005)  # the pacing thread must not wait 5 ms for the GIL
    answer, tokens = build_answer(args.tokens, encoder())
    runs = run_repeatedly(args, lambda: one_run(answer, tokens, args))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    report(runs, tokens, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
