"""The Hub's repo reading and git routes: info, tree, file resolve, refs, branches, tags, discussions/PRs, settings, served by ``HubEmulator`` (tests/fakes/hub_server.py).

``ROUTES`` are (method, path regex, handler name) entries the emulator adds to its own; the
handlers are methods of the mixin below and run under the emulator's lock, returning a JSON
payload, ``(status, payload)``, or a ``RawResponse`` (tests/fakes/_loopback.py). Raise the
``Fail(status, message, headers)`` (tests/fakes/_loopback.py) for errors; the emulator's
helpers (``self._user(call)``, ``self._repo(type, id)``, ``self._repos``) are available on ``self``.
"""

from __future__ import annotations

import re

from tests.fakes._loopback import Fail, RawResponse  # noqa: F401

ROUTES: list[tuple[str, str, str]] = []


class RepoRoutes:
    def _init_repo_routes(self) -> None:
        """Per-emulator state (called from ``HubEmulator.__init__``)."""
