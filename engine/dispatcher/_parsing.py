"""Parsing and checking definitions away from the event loop.

A definition of a few hundred kilobytes takes about half a second of CPU to parse and check;
on the control plane's event loop, every call of every organization would wait for it. So:

- :func:`check_off_loop` (validating, registering: the caller needs the verdict, not the
  loaded object) runs in a separate process, which holds no lock the server needs;
- :func:`load_off_loop` (a run needs the loaded definition here) runs on a thread, once per
  definition version (the registry caches what it loads); the server's short GIL switch
  interval (see engine.server) keeps the loop responsive meanwhile.

Both take one definition at a time: a burst of large definitions waits in line instead of
crowding the machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Final

from engine.definition import DefinitionError, Problem, WorkflowDefinition, load_definition

__all__ = ["CheckedDefinition", "check_off_loop", "load_off_loop"]

_THREAD: Final = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="definitions")


@dataclass(frozen=True)
class CheckedDefinition:
    """What checking a definition found, when it is valid."""

    name: str
    version: int
    content_hash: str
    description: str
    warnings: tuple[Problem, ...]


def _check(text: str, source: str) -> CheckedDefinition | list[Problem]:
    """In the checking process: the definition's summary, or every problem."""
    try:
        definition = load_definition(text, source)
    except DefinitionError as error:
        return list(error.problems)
    return CheckedDefinition(
        name=definition.name,
        version=definition.version,
        content_hash=definition.content_hash,
        description=definition.description or "",
        warnings=definition.warnings,
    )


class _Checker:
    """One checking process, started on first use and again if it dies."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: the server's threads (gRPC, Temporal) do not survive a fork.
            context = multiprocessing.get_context("spawn")
            self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
        return self._pool

    async def check(self, text: str, source: str) -> CheckedDefinition | list[Problem]:
        loop = asyncio.get_running_loop()
        for last in (False, True):
            pool = self.pool()
            try:
                return await loop.run_in_executor(pool, _check, text, source)
            except BrokenProcessPool:
                self._pool = None  # it died (killed, out of memory): a new one, once
                pool.shutdown(wait=False, cancel_futures=True)
                if last:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_CHECKER: Final = _Checker()


def stop_checking() -> None:
    """Stop the checking process, if it runs (it starts again when next needed).

    ``engined`` calls it as it stops: it leaves without the interpreter's finalization, which
    would otherwise stop the process (a spawned child that outlives its parent waits forever).
    """
    _CHECKER.stop()


async def check_off_loop(text: str, source: str) -> CheckedDefinition:
    """Check a definition in the checking process.

    Raises:
        engine.definition.DefinitionError: Every problem, as load_definition reports them.
    """
    outcome = await _CHECKER.check(text, source)
    if isinstance(outcome, list):
        raise DefinitionError(outcome)
    return outcome


async def load_off_loop(text: str, source: str) -> WorkflowDefinition:
    """:func:`~engine.definition.load_definition` on the parsing thread.

    Raises:
        engine.definition.DefinitionError: As load_definition does.
    """
    return await asyncio.get_running_loop().run_in_executor(_THREAD, load_definition, text, source)
