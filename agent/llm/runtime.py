"""Lazy, quiet litellm.

litellm takes 4-7 s to import and, left alone, fetches a price map over the network and
prints warnings to stderr from a background thread - which would garble a running TUI. So it
is imported only on first use, with the offline switches set before the import and its
loggers silenced right after.
"""

from __future__ import annotations

import logging
import os
import threading
from types import ModuleType

_lock = threading.Lock()
_litellm: ModuleType | None = None


def _silence_loggers() -> None:
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "openai"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        logger.setLevel(logging.CRITICAL)


def get_litellm() -> ModuleType:
    """Import litellm once (thread-safe, so a background worker can pre-load it)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("LITELLM_LOG", "CRITICAL")
            import litellm

            litellm.suppress_debug_info = True
            litellm.drop_params = True
            litellm.telemetry = False
            # Our own retry loop owns back-off; litellm's would multiply the attempts.
            litellm.num_retries = 0
            # model names with "llama" would fetch a tokenizer from the Hub inside token_counter
            litellm.disable_hf_tokenizer_download = True
            _silence_loggers()
            _litellm = litellm
    return _litellm


def is_loaded() -> bool:
    return _litellm is not None
