"""``enginectl``: the engine's command-line client.

``validate`` checks definitions offline, ``graph`` draws one as a Mermaid flowchart, ``test``
runs them against test files on a private Temporal dev server, and ``token create`` signs a
token locally; every other command talks to the control plane over gRPC
(:class:`engine.config.ClientSettings` says where the address and the token come from). Output
is an aligned table by default and JSON with ``-o json``.

One module per command group, each holding its commands' flags beside their handlers
(``_definitions``, ``_testing``, ``_runs``, ``_actions``, ``_schedules``, ``_orgs``,
``_tokens``, ``_config``, ``_completion``); what they share is in ``_common`` (options, the
remote-call wrapper, paging, argument values), ``_client`` (the channel and its errors),
``_contexts`` (the config file of named contexts) and ``_output`` (tables, and the one shape
of ``-o json``). No command but ``test`` loads Temporal's SDK or the interpreter (``test``
runs them, and imports them only when it runs); the definition language is imported only by
the commands that need it.

Exit status: 0 when everything succeeded, 1 when something failed (an invalid file, an error
from the server, a run that failed or was cancelled, no server at the address), 2 for a usage
error (the convention of argparse, grep and diff), 130 when interrupted.
"""

from __future__ import annotations

from engine.cli.enginectl._main import main

__all__ = ["main"]
