"""Shared test fixtures: an offline environment for every test and a scripted LLM server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import ScriptedLLMServer

OFFLINE_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

# litellm and huggingface_hub read these at import time, and test modules are imported
# during collection, before any fixture runs, so they are set here as well.
os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session", autouse=True)
def offline_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE_ENV.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(autouse=True)
def mlintern_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data dir per test, so no test reads or writes the user's real one."""
    home = tmp_path / "mlintern-home"
    home.mkdir()
    monkeypatch.setenv("MLINTERN_HOME", str(home))
    # the session-title call after a first turn would be one more model request in every test
    # that counts them; tests of titles turn it back on (tests/test_resume.py)
    monkeypatch.setenv("MLINTERN_MODEL_TITLES", "0")
    # nor should every test with an HF token connect to the Hub's MCP server (tests of it turn it on)
    monkeypatch.setenv("MLINTERN_MCP_DEFAULT", "0")
    return home


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLMServer]:
    """A running ScriptedLLMServer; script replies with ``llm_server.script(...)``."""
    with ScriptedLLMServer() as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    # litellm silences these pydantic warnings with filters set at its import, but pytest
    # resets the filters for every test, so they would flood the summary.
    for pattern in (r".*`ReadOnly` qualifier.*", r".*Accessing the.*attribute on the instance is deprecated.*"):
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A running Hub emulator on 127.0.0.1 with huggingface_hub pointed at it."""
    from huggingface_hub import constants

    from tests.fakes.hub_server import HubEmulator

    # huggingface_hub reads these at import, so the environment alone cannot undo the
    # conftest's offline mode; the module constants have to be patched too.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_EXPERIMENTAL_WARNING", True)
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(hf_home / ".agent_harnesses.json"))
    with HubEmulator() as emulator:
        # Code paths that ignore HfApi(endpoint=) use this; they must land here, never online.
        monkeypatch.setattr(constants, "ENDPOINT", emulator.endpoint)
        yield emulator


