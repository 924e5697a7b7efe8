"""The user's credentials stay out of the agent's reach (issue 11, reference §12 item 7).

Two rules, applied where processes start and where text leaves a tool:

* **Environment**: the processes the agent starts (local ``bash``, local jobs) get this
  process's environment minus every credential: provider keys (``*_API_KEY``), tokens
  (``HF_TOKEN``, ``GITHUB_TOKEN``, ...), cloud secrets and passwords. A name in the config's
  ``pass_env`` list goes through anyway, for users whose scripts need it.
* **Masking**: any text a tool produces (its result, its progress lines, a job's log) that
  contains one of the user's secret values - from the environment or the Hugging Face token
  file - is masked as ``[redacted HF_TOKEN]`` before it reaches the model, the screen or a
  trace. A process that reads a key file itself could still print it; this makes sure the
  value never travels further than its terminal line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

#: words of a variable name (split at "_") that mark a credential: HF_TOKEN, AWS_SECRET_ACCESS_KEY,
#: SSH_AUTH_SOCK - but not TOKENIZERS_PARALLELISM
SECRET_WORDS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "AUTH", "APIKEY"})
#: name endings that mark a credential (OPENAI_API_KEY, WANDB_API_KEY, ..._PRIVATE_KEY)
SECRET_SUFFIXES = ("_KEY", "_KEYS")
#: credentials whose names do not say so
SECRET_NAMES = frozenset({"DATABASE_URL", "NETRC", "PGPASS", "AWS_ACCESS_KEY_ID"})
#: a value shorter than this is not masked (it would match ordinary text)
MIN_SECRET_CHARS = 8


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return (upper in SECRET_NAMES or upper.endswith(SECRET_SUFFIXES)
            or any(word in SECRET_WORDS for word in upper.split("_")))


def agent_environment(pass_env: Iterable[str] = (), env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process the agent starts: ours without credentials, except the
    names the user passes on purpose (``pass_env`` in the config)."""
    env = os.environ if env is None else env
    passed = set(pass_env)
    return {k: v for k, v in env.items() if k in passed or not is_secret_name(k)}


def removed_names(pass_env: Iterable[str] = (), env: Mapping[str, str] | None = None) -> list[str]:
    """The credentials ``agent_environment`` leaves out, by name (for the README's promise and tests)."""
    env = os.environ if env is None else env
    kept = agent_environment(pass_env, env)
    return sorted(k for k in env if k not in kept)


@dataclass
class SecretMasker:
    """Replaces the user's secret values in text. Built once per session from the
    environment and the HF token (the token file included); ``mask`` is a no-op when there
    is nothing to hide."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> name
    _pattern: re.Pattern[str] | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, hf_token: str | None = None) -> SecretMasker:
        env = os.environ if env is None else env
        found: dict[str, str] = {}
        for name, value in env.items():
            if is_secret_name(name) and len(value.strip()) >= MIN_SECRET_CHARS and not _is_path_or_flag(value):
                found.setdefault(value.strip(), name)
        if hf_token and len(hf_token) >= MIN_SECRET_CHARS:
            found.setdefault(hf_token, "HF_TOKEN")
        masker = cls(found)
        masker._compile()
        return masker

    def add(self, value: str, name: str) -> None:
        if value and len(value) >= MIN_SECRET_CHARS and value not in self.secrets:
            self.secrets[value] = name
            self._compile()

    def _compile(self) -> None:
        if not self.secrets:
            self._pattern = None
            return
        # longest first, so a secret that contains another is masked whole
        alternatives = sorted(self.secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: f"[redacted {self.secrets[m.group(0)]}]", text)

    def mask_lines(self, lines: list[str]) -> list[str]:
        if self._pattern is None:
            return lines
        return [self.mask(line) for line in lines]


def _is_path_or_flag(value: str) -> bool:
    """``GOOGLE_APPLICATION_CREDENTIALS=/path/key.json`` names a file, it is not the secret;
    ``*_TOKEN=1``-style switches are not either."""
    v = value.strip()
    return v.startswith(("/", "~", "./")) or v.lower() in ("true", "false", "yes", "no", "none")
