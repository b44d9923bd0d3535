"""The executor library: claim pending actions from the engine, keep their leases, report.

An executor (a CI runner, an agent, a bot) works on actions of one queue, a type and, for
``delegate``, an agent. :class:`Executor` claims them over the gRPC API (ExecutorService), one
executor per action at a time; a :class:`ClaimedAction` heartbeats by itself while it is held
and is reported with ``complete(result)`` or ``fail(message)``. Results are checked against the
action's shape before anything is written, and a report is retried safely when the control
plane does not answer (each carries a request id). ``enginectl work`` is built on the same
protocol, and so are the reference runners: :class:`ShellRunner` (``enginectl work shell``)
and :class:`McpRunner` (``enginectl work mcp``).
"""

from __future__ import annotations

from engine.executor._executor import ClaimedAction, Executor, ExecutorError, client_channel
from engine.executor._mcp import McpRunner, parse_server
from engine.executor._shell import TIMED_OUT, ShellRunner

__all__ = [
    "TIMED_OUT",
    "ClaimedAction",
    "Executor",
    "ExecutorError",
    "McpRunner",
    "ShellRunner",
    "client_channel",
    "parse_server",
]
