"""The Hub's papers, daily papers and paper-linked models/datasets/collections routes, served by ``HubEmulator`` (tests/fakes/hub_server.py).

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


class PapersRoutes:
    def _init_papers(self) -> None:
        """Per-emulator state (called from ``HubEmulator.__init__``)."""
