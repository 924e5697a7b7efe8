"""Model card provenance: what the agent's own Hub writes say about where a repo came from.

A model or dataset repo created by ``hf_repo_git create_repo`` gets a README whose front matter
carries the ``mlintern`` tag and whose text ends with one provenance line; an upload that
writes a model or dataset ``README.md`` keeps (or adds) both. The reference does this with
``sitecustomize`` hooks injected into every shell command, so any repo the user's own code
touches is rewritten too (§2.17, §12.27); here only the agent's explicit Hub writes do it,
the change shows in the approval card's README diff before anything is sent, and
``MLINTERN_PROVENANCE=0`` turns it off.

Idempotent: a card that already has the tag and the line comes back unchanged, byte for byte.
Spaces are left alone (their README front matter configures the Space).
"""

from __future__ import annotations

import os
import re

PROVENANCE_TAG = "mlintern"
PROVENANCE_MARK = "Created with mlintern"
PROVENANCE_LINE = f"_{PROVENANCE_MARK}, an autonomous ML-engineering agent._"

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def provenance_enabled(env: dict[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get("MLINTERN_PROVENANCE", "").strip().lower()
    return value not in ("0", "false", "no", "off")


def applies_to(repo_type: str, path_in_repo: str) -> bool:
    """True when writing ``path_in_repo`` to a repo of this type gets the provenance treatment."""
    return repo_type in ("model", "dataset") and path_in_repo.strip("/") == "README.md" and provenance_enabled()


def new_card(repo_id: str, repo_type: str) -> str:
    """The README of a repo the agent just created."""
    kind = "Dataset" if repo_type == "dataset" else "Model"
    name = repo_id.split("/")[-1]
    return with_provenance(f"# {name}\n\n{kind} repository.\n")


def with_provenance(card: str) -> str:
    """``card`` with the ``mlintern`` tag in its front matter and the provenance line at the end."""
    tagged = _with_tag(card)
    if PROVENANCE_MARK in tagged:
        return tagged
    return tagged.rstrip("\n") + "\n\n" + PROVENANCE_LINE + "\n"


def _with_tag(card: str) -> str:
    match = _FRONT_MATTER.match(card)
    if match is None:
        return f"---\ntags:\n- {PROVENANCE_TAG}\n---\n" + card
    import yaml

    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        return card  # the user's metadata is broken: leave it for the Hub's validator to report
    if not isinstance(data, dict):
        return card
    tags = data.get("tags")
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    if PROVENANCE_TAG in tags:
        return card
    if "tags" not in data:
        # add a key without re-serialising the rest: the user's formatting and comments stay
        block = match.group(1).rstrip("\n") + f"\ntags:\n- {PROVENANCE_TAG}"
        return f"---\n{block}\n---\n" + card[match.end():]
    from huggingface_hub import RepoCard

    parsed = RepoCard(card)
    parsed.data.tags = [*tags, PROVENANCE_TAG]
    return str(parsed)
