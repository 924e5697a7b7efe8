"""Streamed Markdown that stays cheap however long the answer grows.

Textual's Markdown widget makes every paragraph, list item and code fence a widget; a
20,000-token answer becomes ~1,200 widgets and every append re-lays out all of them
(measured: ~110 ms per layout pass, keys echoing after up to 2 s). Here an answer is one
widget whatever its length (``StreamedMarkdown``): the text is cut at block boundaries into
settled chunks, each rendered with Rich Markdown once into lines the widget keeps, plus one
small live tail re-rendered as tokens arrive. Every layout pass walks every widget on the
screen and the compositor draws every widget under each line, so the count matters more
than the size. Colours come from the app theme's variables at render time, so a theme
switch repaints.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.theme import Theme
from textual.color import Color
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widget import Widget

#: a part settles once the live text is this long and has a block boundary to cut at
SETTLE_CHARS = 600


_markdown_class: type | None = None


def _chat_markdown() -> type:
    """rich.markdown (with pygments) costs ~50 ms to import: load it with the first answer,
    not before the first frame."""
    global _markdown_class
    if _markdown_class is None:
        from rich.markdown import Heading, Markdown

        class _LeftHeading(Heading):
            LEVEL_ALIGN = {f"h{n}": "left" for n in range(1, 7)}  # a centred h1 reads oddly in a chat

        from markdown_it import MarkdownIt

        # Rich builds a new markdown-it parser (rules, renderer, linkifier) for every
        # Markdown it is given: ~0.25 ms, as much as parsing a 300-character live tail. One
        # parser serves every render (parsing keeps no state in it).
        parser = MarkdownIt().enable("strikethrough").enable("table")

        class _ChatMarkdown(Markdown):
            elements = {**Markdown.elements, "heading_open": _LeftHeading}

            def __init__(self, markup: str, code_theme: str = "monokai", hyperlinks: bool = True) -> None:
                self.markup = markup
                self.parsed = parser.parse(markup)
                self.code_theme = code_theme
                self.justify = None
                self.style = "none"
                self.hyperlinks = hyperlinks
                self.inline_code_lexer = None
                self.inline_code_theme = code_theme

        _markdown_class = _ChatMarkdown
    return _markdown_class


_STYLE_CACHE: dict[str, tuple[dict[str, str], str]] = {}
_THEMES: dict[int, Theme] = {}  # id of a _STYLE_CACHE styles dict -> its Rich theme


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
            theme = _THEMES.get(id(styles))
            if theme is None:
                theme = _THEMES[id(styles)] = Theme(styles)
            with console.use_theme(theme):
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


def settled_virtual_size() -> Reactive:
    """A ``virtual_size`` that does not ask for another layout pass when it changes.

    Textual sets a widget's virtual size during a layout pass, and the stock reactive then
    requests a second layout pass and a full repaint of the widget for the next frame. For
    widgets whose size comes only from that layout (containers, and line widgets whose
    height is their content), the second pass redraws what the first one just drew: while
    an answer streams it doubled the layout passes (342 for 185 text batches)."""
    return Reactive(Size(0, 0), layout=False, repaint=False)


class StreamedMarkdown(Widget):
    """An answer's Markdown as lines: settled chunks rendered once each, plus the live tail
    re-rendered per batch of text, all served by ``render_line``.

    One widget whatever the answer's length, and no container: a layout pass arranges one
    node, and the compositor draws one layer per line (a container under its children is
    drawn too, every frame its height changes). One render feeds both the height and the
    drawing, and a batch that keeps the height repaints only the lines that changed,
    without a layout pass (a layout pass redraws the whole screen)."""

    DEFAULT_CSS = "StreamedMarkdown { height: auto; }"
    virtual_size = settled_virtual_size()

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.chunks: list[str] = []  # settled, in order
        self.live_text = ""
        self._settled: list[Strip] = []
        self._rendered = 0  # chunks already in _settled
        self._settled_key: tuple[int, str] | None = None
        self._live: list[Strip] = []
        self._live_key: tuple[str, int, str] | None = None

    # ------------------------------------------------------------------ text

    @property
    def text(self) -> str:
        """The whole answer so far."""
        return "".join(self.chunks) + self.live_text

    def append(self, fragment: str) -> None:
        """Add streamed text; settle the tail at a block boundary once it is long."""
        if not fragment:
            return
        live = self.live_text + fragment
        if len(live) > SETTLE_CHARS:
            cut = settle_point(live)
            if cut:
                self.chunks.append(live[:cut])
                live = live[cut:]
        self._set_live(live)

    def clear(self) -> None:
        self.live_text = ""
        self.chunks.clear()
        self._settled_key = self._live_key = None
        self.refresh(layout=True)

    def _set_live(self, live: str) -> None:
        width = self.size.width if self.is_mounted else 0
        if width <= 0:  # not laid out yet: the first layout renders everything
            self.live_text = live
            self.refresh(layout=True)
            return
        settled_before, live_before = len(self._settled), len(self._live)
        self.live_text = live
        settled = len(self._settled_lines(width))
        height = settled + len(self._live_lines(width))
        if height != settled_before + live_before:
            self.refresh(layout=True)
        else:  # same height: repaint from the first line that can have changed
            top = min(settled_before, settled)
            self.refresh(Region(0, top, width, height - top))

    # ------------------------------------------------------------------ lines

    def _styles(self) -> tuple[dict[str, str], str]:
        app = self.app
        theme = app.current_theme
        cached = _STYLE_CACHE.get(theme.name)
        # the theme's variables cost ~0.25 ms to generate: only for a theme not seen yet
        return cached or markdown_styles(app.get_css_variables(), theme.name, theme.dark)

    def _render_text(self, text: str, width: int) -> list[Strip]:
        visual = visualize(self, MarkdownText(text, self._styles))
        return Visual.to_strips(self, visual, width, None, self.visual_style, pad=True)

    def _settled_lines(self, width: int) -> list[Strip]:
        key = (width, self.app.current_theme.name)
        if key != self._settled_key:  # a resize or a theme switch renders them all again
            self._settled_key, self._settled, self._rendered = key, [], 0
        while self._rendered < len(self.chunks):
            self._settled.extend(self._render_text(self.chunks[self._rendered], width))
            self._rendered += 1
        return self._settled

    def _live_lines(self, width: int) -> list[Strip]:
        key = (self.live_text, width, self.app.current_theme.name)
        if key != self._live_key:
            self._live_key = key
            self._live = self._render_text(self.live_text, width) if self.live_text else []
        return self._live

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._settled_lines(width)) + len(self._live_lines(width)) if width > 0 else 0

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width > 0:
            settled = self._settled_lines(width)
            if y < len(settled):
                return settled[y]
            live = self._live_lines(width)
            if y - len(settled) < len(live):
                return live[y - len(settled)]
        return Strip.blank(width, self.visual_style.rich_style)

    def lines_text(self) -> list[str]:
        """The rendered lines as plain text (what a selection copies)."""
        width = self.size.width
        if width <= 0:
            return []
        return [strip.text.rstrip() for strip in self._settled_lines(width) + self._live_lines(width)]

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self.lines_text())), "\n"
