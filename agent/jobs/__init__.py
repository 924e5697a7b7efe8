"""Compute jobs: backends (Hugging Face Jobs, local processes), prices, and the monitor
that follows running jobs in the background."""
