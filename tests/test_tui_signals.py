"""SIGTERM to the app in a real terminal (a pty) ends it like ctrl+q: the running ``bash``
command's and the local job's process groups are stopped, and the terminal is put back
(alternate screen left, mouse tracking off, the tty's modes as before). Python's default
would end the process on the spot and leave all three behind."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

from agent.process_tracker import process_group
from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import mlintern_cmd, server_env


def group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` still runs (zombies waiting for a reaper do not count)."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or process_group(int(name)) != pgid:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X"):
                    return True
        except OSError:
            continue
    return False


class Pty:
    """The app's terminal: everything it writes is kept, and keys can be typed."""

    def __init__(self, cols: int = 120, rows: int = 36):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_for(self, needle: bytes, timeout: float, what: str, start: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in bytes(self.output[start:]):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def wait_for_file(path: Path, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return path.read_text().strip()


def test_sigterm_stops_the_running_command_and_the_local_job_and_restores_the_terminal(llm_server, mlintern_home,
                                                                                      tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    # five lines at once: hf_jobs run returns when it has seen five first lines (with fewer it waits
    # its whole 3 s before the model's next call starts the bash command)
    job = (f"import os, time\nopen({str(marks / 'job')!r}, 'w').write(str(os.getpgid(0)))\n"
           "print('job up', flush=True)\nfor i in range(4):\n    print(f'setup {i}', flush=True)\ntime.sleep(600)\n")
    llm_server.script(
        ToolCalls([Call("j1", "hf_jobs", json.dumps({"operation": "run", "script": job, "timeout": "30m"}))]),
        ToolCalls([Call("b1", "bash", json.dumps({"command": f"echo $$ > {marks / 'bash'}; sleep 600"}))]),
        Text("never reached"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN",)}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", **server_env(llm_server)})
    work = tmp_path / "proj"
    work.mkdir()
    term = Pty()
    before = termios.tcgetattr(term.slave)
    proc = subprocess.Popen([*mlintern_cmd(), "-m", "openai/scripted-model", "--yolo", "--jobs-backend", "local"],
                            stdin=term.slave, stdout=term.slave, stderr=term.slave, cwd=work, env=env,
                            start_new_session=True)
    term.start()
    groups: list[int] = []
    try:
        term.wait_for(b"scripted-model", 60, "the model to be ready")
        term.wait_for(b"\x1b[?1049h", 5, "the alternate screen")
        time.sleep(0.3)
        term.type("start the job and the command\r")
        groups.append(int(wait_for_file(marks / "job", 60, "the local job to start")))
        groups.append(int(wait_for_file(marks / "bash", 60, "the bash command to start")))
        assert all(group_alive(g) for g in groups)
        mark = len(term.output)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        time.sleep(0.3)  # the reader thread takes the last bytes
        after_signal = bytes(term.output[mark:])
        assert code == 128 + signal.SIGTERM
        assert [g for g in groups if group_alive(g)] == []
        assert b"\x1b[?1049l" in after_signal  # the alternate screen left
        assert b"\x1b[?1000l" in after_signal and b"\x1b[?1003l" in after_signal  # mouse tracking off
        restored = termios.tcgetattr(term.slave)
        assert restored[3] & (termios.ECHO | termios.ICANON) == before[3] & (termios.ECHO | termios.ICANON)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
        term.close()
