"""The app's side of the kept first frame (``mlintern_tui/instant_frame.py`` draws it at the
next start): the bytes Textual writes for the first whole-screen frame, caught on their way to
the terminal, where typed characters go in it, and the record written once the session is
built (the config and the permission record are then as the next start finds them).

A frame drawn after input came (keys typed into the last start's kept frame, handed to the
prompt) is not the start's own: nothing is kept then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from textual.app import App

    from mlintern_tui.instant_frame import Slot


class FrameKeeper:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.capturing = True  # until the first whole-screen frame went out
        #: the first frame, its terminal size and prompt slot, once caught without input before it
        self._frame: tuple[str, tuple[int, int], Slot | None] | None = None
        #: whether that frame named the model as ready, not loading, and whether the next start's
        #: will (known once the session is built: until then nothing is kept)
        self._ready = False
        self._next_ready: bool | None = None

    def display(self, app: App, renderable: Any, display: Callable[[], None]) -> None:
        """Textual's ``_display`` for this frame (``display``), caught if it is the first whole
        screen."""
        frames = getattr(app._driver, "_frames", None)  # SteadyDriver's FrameWriter
        if frames is None or type(renderable).__name__ != "LayoutUpdate":
            display()
            return
        self.capturing = False
        frames.capture = captured = []
        try:
            display()
        finally:
            frames.capture = None
        if captured and getattr(app, "last_input_at", 0.0) == 0.0:
            self._frame = ("".join(captured), (app.size.width, app.size.height), _slot(app))
            self._ready = bool(getattr(getattr(app, "status_info", None), "model_ready", False))

    def session_built(self, app: App, next_ready: bool) -> None:
        """``next_ready``: whether the next start's first frame will name the model as ready.
        A frame that says otherwise (this start built the tools' schemas and said loading)
        would show the wrong state for a moment: the next start keeps its own instead."""
        self._next_ready = next_ready
        self._keep(app)

    def first_frame_out(self, app: App) -> None:
        self.capturing = False
        self._keep(app)

    def _keep(self, app: App) -> None:
        if self._next_ready is None or not self._frame:
            return
        if self._ready != self._next_ready:
            self._frame = None
            return
        (frame, size, slot), self._frame = self._frame, None
        argv = self.argv

        def keep() -> None:
            from mlintern_tui.instant_frame import remember, start_key

            key = start_key(argv, size)
            if key is not None:
                remember(key, frame, slot)

        app.run_worker(keep, thread=True, exit_on_error=False, name="keep the first frame", group="first-frame")


def _slot(app: Any) -> Slot | None:
    """Where keys typed into the kept frame go: the empty, focused prompt's first row, in the
    text area's own styles (typed text, the cursor cell, the rest of the row)."""
    from textual.strip import Strip

    from mlintern_tui.instant_frame import Slot
    from mlintern_tui.local_echo import style_edges

    prompt = getattr(app, "prompt", None)
    if prompt is None or app.screen is not prompt.screen or app.screen.focused is not prompt or prompt.text:
        return None
    theme = getattr(prompt, "_theme", None)  # the TextArea's theme: Textual's private name
    text_style = getattr(theme, "cursor_line_style", None) or getattr(theme, "base_style", None) or prompt.rich_style
    cursor_style = getattr(theme, "cursor_style", None) or prompt.get_component_rich_style("text-area--cursor")
    system = app.console._color_system
    text_on, text_off = style_edges(text_style, system)
    content = prompt.content_region
    return Slot(x=content.x, y=content.y, width=content.width, text_on=text_on, text_off=text_off,
                cursor=Strip.render_style(cursor_style, " ", color_system=system), blank_on=text_on,
                blank_off=text_off)
