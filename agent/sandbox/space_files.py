"""What a sandbox Space's repo holds: a Docker Space README, the Dockerfile, and our control server."""

from __future__ import annotations

from pathlib import Path

from agent.sandbox.server import SOURCE_FILES

SPACE_PORT = 7860

_README = """---
title: mlintern sandbox
emoji: 🧪
colorFrom: gray
colorTo: blue
sdk: docker
app_port: {port}
pinned: false
---

A private, temporary sandbox for one mlintern session. It is deleted when the session ends.
"""

_DOCKERFILE = """FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \\
        tini git git-lfs curl wget ca-certificates build-essential tmux procps \\
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv
RUN useradd -m -u 1000 user && mkdir -p /app && chown user /app
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY --chown=user sandbox/ /home/user/sandbox/
EXPOSE {port}
# tini reaps the orphans that background commands leave behind
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python3", "/home/user/sandbox/server.py", "--host", "0.0.0.0", "--port", "{port}", "--workdir", "/app"]
"""


def space_files() -> dict[str, str]:
    """Path in the Space repo -> its text."""
    here = Path(__file__).parent
    return {
        "README.md": _README.format(port=SPACE_PORT),
        "Dockerfile": _DOCKERFILE.format(port=SPACE_PORT),
        **{f"sandbox/{name}": (here / name).read_text(encoding="utf-8") for name in SOURCE_FILES},
    }
