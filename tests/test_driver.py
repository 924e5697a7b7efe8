"""A terminal that cannot say its size any more keeps the last size it said
(mlintern_tui/driver.py): a closed window must not make the app lay everything out again at
Textual's fallback of 80x25 before it handles the hangup."""

from __future__ import annotations

import os
import pty
import sys

from textual.drivers.linux_driver import LinuxDriver

from mlintern_tui.driver import SteadyDriver
from tests.tui_support import AppUnderTest


def _driver(file) -> SteadyDriver:
    driver = SteadyDriver.__new__(SteadyDriver)  # no terminal modes, no signal handlers
    driver._file = file
    return driver


def test_a_live_terminal_reports_its_size(monkeypatch):
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as tty:
            driver = _driver(tty)
            monkeypatch.setattr(sys, "__stdout__", tty)
            monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (132, 43))
            assert driver._get_terminal_size() == (132, 43)
            monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (100, 30))
            assert driver._get_terminal_size() == (100, 30)  # a real resize goes through
    finally:
        os.close(master)


def test_a_terminal_that_is_gone_keeps_the_last_size(monkeypatch, tmp_path):
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    driver = _driver(tty)
    monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (132, 43))
    assert driver._get_terminal_size() == (132, 43)
    # the window closes: its size cannot be read, and Textual would fall back to 80x25
    tty.close()
    os.close(master)
    driver._file = open(tmp_path / "not-a-tty", "w")
    monkeypatch.setattr(sys, "__stdout__", driver._file)  # pytest's own may be a terminal
    monkeypatch.setattr(LinuxDriver, "_get_terminal_size", lambda self: (80, 25))
    try:
        assert driver._get_terminal_size() == (132, 43)
    finally:
        driver._file.close()


def test_the_app_uses_it_unless_another_driver_is_asked_for(monkeypatch):
    from textual import constants

    monkeypatch.setattr(constants, "DRIVER", None)
    assert AppUnderTest().get_driver_class() is SteadyDriver
    # TEXTUAL_DRIVER (read into constants.DRIVER when Textual is imported) is the user's choice
    monkeypatch.setattr(constants, "DRIVER", "textual.drivers.linux_inline_driver:LinuxInlineDriver")
    assert AppUnderTest().get_driver_class().__name__ == "LinuxInlineDriver"
