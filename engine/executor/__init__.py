"""The executor library: claim pending actions from the engine, keep their leases, report.

An executor (a CI runner, an agent, a bot) works on actions of one queue, a type and, for
``delegate``, an agent. :class:`Executor` claims them over the gRPC API (ExecutorService), one
executor per action at a time; a :class:`ClaimedAction` heartbeats by itself while it is held
and is reported with ``complete(result)`` or ``fail(message)``. Results are checked against the
action's shape before anything is written, and a report is retried safely when the control
plane does not answer (each carries a request id). ``enginectl work`` is built on the same
protocol.
"""

from __future__ import annotations

from engine.executor._executor import ClaimedAction, Executor, ExecutorError

__all__ = ["ClaimedAction", "Executor", "ExecutorError"]
