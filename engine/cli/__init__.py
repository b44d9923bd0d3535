"""Command-line interfaces: ``enginectl`` (the client) and ``engined`` (the daemon).

The launchers in ``cmd/`` and the console scripts declared in ``pyproject.toml`` call these
functions; all the logic lives here so it can be tested in-process.
"""

from __future__ import annotations

from engine.cli._enginectl import enginectl_main
from engine.cli._engined import engined_main

__all__ = ["enginectl_main", "engined_main"]
