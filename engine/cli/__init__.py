"""Command-line interfaces: ``enginectl`` (the client) and ``engined`` (the daemon).

The launchers in ``cmd/`` and the console scripts declared in ``pyproject.toml`` call these
functions; all the logic lives below them so it can be tested in-process. Each imports its
program only when called: ``enginectl`` must start without loading the daemon's stack.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["enginectl_main", "engined_main", "engined_program"]


def enginectl_main(argv: Sequence[str] | None = None) -> int:
    """Run ``enginectl`` (see :mod:`engine.cli.enginectl`) and return its exit status."""
    from engine.cli.enginectl import main

    return main(argv)


def engined_main(argv: Sequence[str] | None = None) -> int:
    """Run ``engined`` (see :mod:`engine.cli.engined`) and return its exit status."""
    from engine.cli.engined import main

    return main(argv)


def engined_program() -> NoReturn:
    """The ``engined`` program (its console script and ``cmd/engined``): run it, then leave
    the process without the interpreter's finalization.

    By then everything ``engined`` started has stopped in order (its workers, its control
    plane, its exporters flushed). The native threads of Temporal's SDK core and of gRPC may
    still call into Python for a moment, and one that does while the interpreter finalizes
    aborts the process ("PyGILState_Release ... must be current", exit status -6: about one
    stop in ten right after a start): the exit status must be what ``engined`` decided.
    """
    code = engined_main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
