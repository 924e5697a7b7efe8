"""Ranking a repository's file tree for ``github_find_examples``: which files are examples, how well a
path matches a keyword, and the tree answer's JSON decoded entry by entry.

All of it is pure and CPU-bound; the tool runs ``rank_response`` in a worker thread.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.net import Response

EXAMPLE_DIRS = frozenset({
    "examples", "example", "scripts", "notebooks", "notebook", "tutorials", "tutorial", "cookbook", "cookbooks",
    "recipes", "recipe", "demos", "demo", "samples", "sample", "quickstart", "getting_started", "guides",
    "use_cases", "usecases", "training_scripts",
})
TEST_DIRS = frozenset({"tests", "test", "testing", "benchmarks"})
CODE_SUFFIXES = frozenset({
    ".py", ".ipynb", ".sh", ".md", ".mdx", ".yaml", ".yml", ".toml", ".json", ".cfg", ".js", ".ts", ".rs", ".go",
    ".cpp", ".cc", ".c", ".h", ".cu", ".jl", ".r", ".swift", ".kt", ".java", ".txt",
})

#: most code files fuzzy-matched in one tree; past it only paths holding the first three letters of a
#: keyword word (or under an example directory) are scored, so a huge monorepo costs a bounded time
MAX_FUZZY_PATHS = 60_000

_KEYWORD_SPLIT = re.compile(r"[\s_\-/.,]+")
_PIECE_SPLIT = re.compile(r"[_\-.\s]+")
_RUNS = re.compile(r"[\s_\-]+")


def _pieces(path: str) -> list[str]:
    """The words of a path: each directory, the file's stem, and their '_'/'-'/'.' parts."""
    low = path.lower()
    parts = low.split("/")
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    whole = parts[:-1] + [stem]
    words = [w for p in whole for w in _PIECE_SPLIT.split(p) if w]
    return list(dict.fromkeys(whole + words))


def _stem(path: str) -> str:
    return path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _bound(word: str, letters: Counter[str], other: str) -> float:
    """An upper bound of ``SequenceMatcher(None, word, other).ratio() * 100``: the letters they share
    (what ``quick_ratio`` counts), without building the matcher's index of ``other``."""
    total = len(word) + len(other)
    if not word or not other:
        return 0.0 if total else 100.0
    shared = sum(min(n, other.count(ch)) for ch, n in letters.items())
    return 200.0 * shared / total


class KeywordScorer:
    """``keyword_score`` for many paths of one tree, with the same results but far less difflib.

    A word of a path ("trainer", "examples") recurs across thousands of paths, so each
    (keyword word, path word) ratio is computed once; and a ratio is computed at all only when
    a cheap upper bound of it (the letters the two share) could beat the best match found so
    far for that keyword word, which it rarely can. The whole-name comparison is made only
    when it could raise the score or lift it to the threshold.
    """

    def __init__(self, keyword: str) -> None:
        low = keyword.lower()
        words = [t for t in _KEYWORD_SPLIT.split(low) if t]
        self.count = len(words)  # a repeated word counts each time, as in a plain mean
        self.tokens = list(dict.fromkeys(words))
        self.repeats = [words.count(t) for t in self.tokens]
        self.joined = _RUNS.sub("_", low.strip())
        self._exact: list[dict[str, float]] = [{} for _ in self.tokens]  # path word -> ratio * 100
        self._bounds: list[dict[str, float]] = [{} for _ in self.tokens]  # path word -> upper bound of that
        self._letters = [Counter(token) for token in self.tokens]
        self._matchers = [difflib.SequenceMatcher(None, token, "") for token in self.tokens]
        self._whole: dict[str, float] = {}
        self._joined_letters = Counter(self.joined)
        self._whole_matcher = difflib.SequenceMatcher(None, self.joined, "")
        self._close: dict[str, float] = {}

    def _token_best(self, i: int, pieces: list[str]) -> float:
        token = self.tokens[i]
        best = 0.0
        exact, bounds = self._exact[i], self._bounds[i]
        unknown: list[tuple[float, str]] = []
        for piece in pieces:  # the free answers first: equal (100: done), contained (90), or known
            if piece == token:
                return 100.0
            if len(token) >= 3 and token in piece:
                best = max(best, 90.0)
                continue
            value = exact.get(piece)
            if value is None:
                bound = bounds.get(piece)
                if bound is None:
                    bound = bounds[piece] = _bound(token, self._letters[i], piece)
                unknown.append((bound, piece))
            elif value > best:
                best = value
        if unknown:
            matcher = self._matchers[i]
            unknown.sort(reverse=True)
            for bound, piece in unknown:  # the most promising first, until none can beat the best
                if bound <= best:
                    break
                matcher.set_seq2(piece)
                value = exact[piece] = matcher.ratio() * 100
                if value > best:
                    best = value
        return best

    def _whole_ratio(self, stem: str, floor: float) -> float:
        """The whole-name ratio, or a bound of it that is at most ``floor`` when that is all it can be."""
        norm = _RUNS.sub("_", stem)
        value = self._whole.get(norm)
        if value is None:
            bound = _bound(self.joined, self._joined_letters, norm)
            if bound <= floor:
                return bound
            self._whole_matcher.set_seq2(norm)
            value = self._whole[norm] = self._whole_matcher.ratio() * 100
        return value

    def score(self, path: str, floor: int = 0) -> int | None:
        """0-100 like ``keyword_score``; None when it is below ``floor``."""
        if not self.tokens:
            return 0 if floor <= 0 else None
        pieces = _pieces(path)
        mean = sum(self._token_best(i, pieces) * n for i, n in enumerate(self.repeats)) / self.count
        # the whole-name ratio matters only when it beats the mean and could reach the floor
        whole = self._whole_ratio(_stem(path), max(mean, floor - 0.5 - 1e-9))
        result = round(max(mean, whole))
        return result if result >= floor else None

    def closeness(self, path: str) -> float:
        """How like the keyword the file's name is (ties go to the closest)."""
        stem = _stem(path)
        value = self._close.get(stem)
        if value is None:
            value = self._close[stem] = difflib.SequenceMatcher(None, self.joined, stem).ratio()
        return value

    def might_match(self, low_path: str) -> bool:
        """A cheap sign that ``low_path`` shares something with the keyword: a word, or its first three letters."""
        return any(t[:3] in low_path for t in self.tokens)


def keyword_score(keyword: str, path: str) -> int:
    """0-100: how well every word of the keyword matches some word of the path."""
    return KeywordScorer(keyword).score(path) or 0


def example_rank(path: str) -> int:
    """2 under a top-level examples/, 1 under another example-ish directory, 0 otherwise."""
    dirs = path.lower().split("/")[:-1]
    if dirs and dirs[0] in ("examples", "example"):
        return 2
    return 1 if any(d in EXAMPLE_DIRS for d in dirs) else 0


def _is_code(path: str, size: Any) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return suffix in CODE_SUFFIXES and (not isinstance(size, int) or size <= 2_000_000)


@dataclass
class TreeRanking:
    files: int  # blobs in the tree
    truncated: bool  # GitHub cut the listing short
    scored: list[tuple[int, str, Any]] = field(default_factory=list)  # (score, path, size), best first
    example_dirs: dict[str, int] = field(default_factory=dict)  # filled only when nothing scored
    skipped: int = 0  # code files not fuzzy-matched (past MAX_FUZZY_PATHS, sharing no letters with the keyword)


def rank_tree(tree: Any, keyword: str, min_score: int, stop: threading.Event | None = None,
              max_fuzzy: int = MAX_FUZZY_PATHS) -> TreeRanking:
    """The tree's files ranked for ``keyword`` (or its example files without one). Pure and CPU-bound:
    ``github_find_examples`` runs it in a worker thread; ``stop`` set (the call was cancelled) ends it early."""
    entries = tree.get("tree") if isinstance(tree, dict) else None
    blobs = [(e["path"], e.get("size")) for e in entries or []
             if isinstance(e, dict) and e.get("type") == "blob" and isinstance(e.get("path"), str)]
    out = TreeRanking(len(blobs), bool(isinstance(tree, dict) and tree.get("truncated")))
    scorer = KeywordScorer(keyword) if keyword else None
    candidates = [(p, s) for p, s in blobs if _is_code(p, s)]
    if scorer is not None and len(candidates) > max_fuzzy:
        likely = [(p, s) for p, s in candidates if example_rank(p) or scorer.might_match(p.lower())]
        out.skipped = len(candidates) - min(len(likely), max_fuzzy)
        candidates = likely[:max_fuzzy]
    ranked: list[tuple[int, int, str, Any]] = []
    for n, (path, size) in enumerate(candidates):
        if stop is not None and n % 512 == 0 and stop.is_set():
            return out
        rank = example_rank(path)
        score: int | None = 0
        if scorer is not None:
            score = scorer.score(path, min_score)
            if score is None:
                continue
        elif rank == 0:
            continue
        is_test = any(d in TEST_DIRS for d in path.lower().split("/")[:-1])
        ranked.append((score + 8 * rank - (15 if is_test else 0), score, path, size))
    if scorer is not None:  # ties go to the file named most like the keyword, then the shallowest
        ranked.sort(key=lambda s: (-s[0], -scorer.closeness(s[2]), s[2].count("/"), s[2]))
    else:
        ranked.sort(key=lambda s: (-s[0], s[2].count("/"), s[2]))
    out.scored = [(score, path, size) for _, score, path, size in ranked]
    if not out.scored:
        for path, _ in blobs:
            top = [d for d in path.split("/")[:-1] if d.lower() in EXAMPLE_DIRS]
            if top:
                key = path[: path.lower().index(top[0].lower()) + len(top[0])]
                out.example_dirs[key] = out.example_dirs.get(key, 0) + 1
    return out


_JSON = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def parse_tree(content: bytes) -> Any:
    """The tree answer's JSON, with its ``tree`` array decoded one entry at a time.

    ``json.loads`` is one C call that holds the GIL from start to end: on a 40 MB tree that is
    a few hundred ms in which the event loop's thread cannot run, worker thread or not. Entry by
    entry, the interpreter can switch threads between entries. Raises ValueError (or
    IndexError) on anything it does not expect; the caller then falls back to ``json.loads``.
    """
    s = content.decode("utf-8")
    ws = _WS.match
    i = ws(s, 0).end()
    if s[i] != "{":
        raise ValueError("not an object")
    out: dict[str, Any] = {}
    i = ws(s, i + 1).end()
    while s[i] != "}":
        key, i = _JSON.raw_decode(s, i)
        i = ws(s, i).end()
        if not isinstance(key, str) or s[i] != ":":
            raise ValueError("bad key")
        i = ws(s, i + 1).end()
        if key == "tree" and s[i] == "[":
            items: list[Any] = []
            i = ws(s, i + 1).end()
            if s[i] == "]":
                i += 1
            else:
                while True:
                    item, i = _JSON.raw_decode(s, i)
                    items.append(item)
                    i = ws(s, i).end()
                    if s[i] == "]":
                        i += 1
                        break
                    if s[i] != ",":
                        raise ValueError("bad array")
                    i = ws(s, i + 1).end()
            value: Any = items
        else:
            value, i = _JSON.raw_decode(s, i)
        out[key] = value
        i = ws(s, i).end()
        if s[i] == ",":
            i = ws(s, i + 1).end()
            if s[i] == "}":
                raise ValueError("trailing comma")
        elif s[i] != "}":
            raise ValueError("bad object")
    if ws(s, i + 1).end() != len(s):
        raise ValueError("trailing data")
    return out


def rank_response(response: Response, keyword: str, min_score: int, stop: threading.Event) -> TreeRanking:
    """Parse the tree answer (up to 40 MB) and rank it: all of it in the worker thread."""
    try:
        tree = parse_tree(response.content)
    except (ValueError, IndexError):
        tree = response.json()  # the plain parser: the same result, or the usual NetError for broken JSON
    return rank_tree(tree, keyword, min_score, stop)
