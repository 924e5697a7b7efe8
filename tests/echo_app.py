"""The real app in a real terminal for tests/test_local_echo.py, with one addition: a file
that, when it appears, makes the UI loop busy (it sleeps in a timer callback for as long as
the file says) and then, if the file says so, moves the focus off the prompt, as a binding or
a dialog taking the next key would. Run as ``python -m tests.echo_app`` inside tmux."""

from __future__ import annotations

import json
import os
import sys
import time

from mlintern_tui.app import MLInternApp


class BusyApp(MLInternApp):
    def on_ready(self) -> None:
        super().on_ready()
        self.set_interval(0.02, self._maybe_busy)

    def _maybe_busy(self) -> None:
        flag = os.environ["ECHO_TEST_FLAG"]
        try:
            with open(flag) as f:
                order = json.load(f)
        except (OSError, ValueError):
            return
        os.unlink(flag)
        with open(flag + ".busy", "w") as f:
            f.write("1")
        time.sleep(order.get("busy_s", 1.0))  # the loop can do nothing now: no frame, no key
        if order.get("blur"):
            self.screen.set_focus(None)


if __name__ == "__main__":
    sys.setswitchinterval(0.001)  # as run_app
    BusyApp(start_engine=False).run()
