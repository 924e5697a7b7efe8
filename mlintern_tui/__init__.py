"""The mlintern front ends: the Textual app and the headless printer."""

__version__ = "0.1.0"
