"""Streamed Markdown that stays cheap however long the answer grows.

Textual's Markdown widget makes every paragraph, list item and code fence a widget; a
20,000-token answer becomes ~1,200 widgets and every append re-lays out all of them
(measured: ~110 ms per layout pass, keys echoing after up to 2 s). Here an answer is a few
plain widgets: the text is cut at block boundaries into settled parts, each one widget
rendering Rich Markdown once, plus one small live part re-rendered as tokens arrive.
Colours come from the app theme's variables at render time, so a theme switch repaints.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.theme import Theme
from textual.color import Color
from textual.widgets import Static

#: a part settles once the live text is this long and has a block boundary to cut at
SETTLE_CHARS = 1200


_markdown_class: type | None = None


def _chat_markdown() -> type:
    """rich.markdown (with pygments) costs ~50 ms to import: load it with the first answer,
    not before the first frame."""
    global _markdown_class
    if _markdown_class is None:
        from rich.markdown import Heading, Markdown

        class _LeftHeading(Heading):
            LEVEL_ALIGN = {f"h{n}": "left" for n in range(1, 7)}  # a centred h1 reads oddly in a chat

        class _ChatMarkdown(Markdown):
            elements = {**Markdown.elements, "heading_open": _LeftHeading}

        _markdown_class = _ChatMarkdown
    return _markdown_class


_STYLE_CACHE: dict[str, tuple[dict[str, str], str]] = {}


def markdown_styles(variables: dict[str, str], theme_name: str, dark: bool) -> tuple[dict[str, str], str]:
    """Rich style names for Markdown, built from the Textual theme's variables."""
    cached = _STYLE_CACHE.get(theme_name)
    if cached:
        return cached
    background = Color.parse(variables.get("background", "#000000"))

    def v(name: str, default: str) -> str:
        # Rich takes no alpha: blend translucent theme colours over the background
        try:
            colour = Color.parse(variables.get(name, default))
        except Exception:
            colour = Color.parse(default)
        return (background + colour).hex if colour.a < 1 else colour.hex

    primary, secondary, accent = v("primary", "#0000FF"), v("secondary", "#00FFFF"), v("accent", "#FFFF00")
    panel, muted = v("panel", "#333333"), v("foreground-muted", v("foreground", "#FFFFFF"))
    styles = {
        "markdown.h1": f"bold {primary}",
        "markdown.h1.border": primary,
        "markdown.h2": f"bold {primary}",
        "markdown.h3": f"bold {secondary}",
        "markdown.h4": "bold",
        "markdown.h5": "bold",
        "markdown.h6": "bold",
        "markdown.strong": "bold",
        "markdown.em": "italic",
        "markdown.code": f"bold {accent} on {panel}",
        "markdown.code_block": f"on {panel}",
        "markdown.block_quote": f"italic {secondary}",
        "markdown.item.bullet": f"bold {accent}",
        "markdown.item.number": f"bold {accent}",
        "markdown.link": f"underline {primary}",
        "markdown.link_url": f"underline {secondary}",
        "markdown.hr": muted,
        "markdown.table.header": f"bold {primary}",
        "markdown.table.border": muted,
    }
    result = (styles, "monokai" if dark else "friendly")
    _STYLE_CACHE[theme_name] = result
    return result


class MarkdownText:
    """A Rich renderable: ``text`` as Markdown, styled by ``style_source()`` at render time."""

    def __init__(self, text: str, style_source: Callable[[], tuple[dict[str, str], str]]):
        self.text = text
        self.style_source = style_source
        # Textual renders a renderable once to measure its height and once to draw it:
        # parse and highlight once per (width, theme) instead
        self._cache: tuple[Any, list] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        styles, code_theme = self.style_source()
        key = (options.max_width, id(styles))
        if self._cache is None or self._cache[0] != key:
            markdown = _chat_markdown()(self.text, code_theme=code_theme, hyperlinks=False)
            with console.use_theme(Theme(styles)):
                self._cache = (key, list(console.render(markdown, options)))
        yield from self._cache[1]


def settle_point(text: str) -> int:
    """Where ``text`` may be cut so both sides render as they would together: after the
    last blank line that is outside a code fence (0 when there is none)."""
    point = 0
    in_fence = False
    fence_marker = ""
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            if not in_fence:
                in_fence, fence_marker = True, marker
            elif marker == fence_marker:
                in_fence = False
        pos += len(line)
        if not in_fence and not line.strip() and pos < len(text):
            point = pos
    return point


class MarkdownPart(Static):
    """One settled or live piece of an answer."""

    DEFAULT_CSS = "MarkdownPart { height: auto; }"

    def __init__(self, text: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.text = text
        self._measured_height: int | None = None
        self._show(text)

    def _styles(self) -> tuple[dict[str, str], str]:
        app = self.app
        theme = app.current_theme
        return markdown_styles(app.get_css_variables(), theme.name, theme.dark)

    def _show(self, text: str) -> None:
        self.text = text
        self.update(MarkdownText(text, self._styles))

    def set_text(self, text: str) -> None:
        """Replace the text; re-layout the screen only if the part's height changed (most
        batches of tokens extend the last line and do not - a layout pass redraws
        everything)."""
        if text == self.text:
            return
        self.text = text
        renderable = MarkdownText(text, self._styles)
        width = self.content_region.width if self.is_mounted else 0
        height = None
        if width > 0:
            console = self.app.console
            height = len(console.render_lines(renderable, console.options.update_width(width), pad=False))
        self.update(renderable, layout=height is None or height != self._measured_height)
        self._measured_height = height
