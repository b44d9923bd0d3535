"""Shared test helpers: the Temporal dev server and ways to drive runs."""
