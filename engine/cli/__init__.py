"""Command-line interfaces: ``enginectl`` (the client) and ``engined`` (the daemon).

The launchers in ``cmd/`` and the console scripts declared in ``pyproject.toml`` call these
functions; all the logic lives below them so it can be tested in-process. Each imports its
program only when called: ``enginectl`` must start without loading the daemon's stack.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["enginectl_main", "engined_main"]


def enginectl_main(argv: Sequence[str] | None = None) -> int:
    """Run ``enginectl`` (see :mod:`engine.cli.enginectl`) and return its exit status."""
    from engine.cli.enginectl import main

    return main(argv)


def engined_main(argv: Sequence[str] | None = None) -> int:
    """Run ``engined`` (see :mod:`engine.cli.engined`) and return its exit status."""
    from engine.cli.engined import main

    return main(argv)
