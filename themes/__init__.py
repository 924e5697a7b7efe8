"""The app's colour themes. Widgets use only theme variables (``$primary``, ``$panel`` ...
and the ones declared in ``THEME_VARIABLE_DEFAULTS``), never literal colours."""

from __future__ import annotations

from textual.theme import Theme

DARK = Theme(
    name="mlintern-dark",
    primary="#6CA0DC",
    secondary="#8FBCBB",
    accent="#E5A45A",
    warning="#E5C07B",
    error="#E06C75",
    success="#98C379",
    foreground="#D8DEE9",
    background="#16181D",
    surface="#1D2026",
    panel="#252932",
    dark=True,
    variables={"block-cursor-text-style": "none", "footer-key-foreground": "#E5A45A"},
)

LIGHT = Theme(
    name="mlintern-light",
    primary="#2F5D9B",
    secondary="#3B7A78",
    accent="#B85C00",
    warning="#9A6700",
    error="#B42318",
    success="#2F7D32",
    foreground="#1F2328",
    background="#FAFAF7",
    surface="#F0F0EB",
    panel="#E4E4DD",
    dark=False,
    variables={"block-cursor-text-style": "none", "footer-key-foreground": "#B85C00"},
)

HUGGING_FACE = Theme(
    name="mlintern-hf",
    primary="#FFD21E",
    secondary="#FF9D00",
    accent="#FFD21E",
    warning="#FF9D00",
    error="#FF5C5C",
    success="#6BD968",
    foreground="#F5F5F0",
    background="#101114",
    surface="#17181C",
    panel="#22232A",
    dark=True,
    variables={"block-cursor-text-style": "none", "footer-key-foreground": "#FFD21E"},
)

THEMES: tuple[Theme, ...] = (DARK, LIGHT, HUGGING_FACE)
DEFAULT_THEME = DARK.name

#: our own variables, so every theme (including Textual's built-in ones) defines them
THEME_VARIABLE_DEFAULTS: dict[str, str] = {}
