"""Command-line interfaces: ``enginectl`` (and, with the control-plane issue, ``engined``).

The launchers in ``cmd/`` and the console scripts declared in ``pyproject.toml`` call these
functions; all the logic lives here so it can be tested in-process.
"""

from __future__ import annotations

from engine.cli._enginectl import enginectl_main

__all__ = ["enginectl_main"]
