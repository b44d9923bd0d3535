"""``parallel``: named branches of steps that run at once inside the run, joined at the end.

Each branch is a flow of its own (an asyncio task of the workflow, deterministic like the rest):
its steps may wait on actions, timers or fan-outs while the others go on. The branches that
finished are part of the run's position (``run.parallels``): a run that continues as new (all
branches wait for that at a step boundary, see ``EngineWorkflow.continue_as_new_if_suggested``)
resumes only the unfinished ones, each where it stopped.

A failed branch (a step whose ``on_error`` fails it) stops the others at once with
``on_branch_error: fail_fast``, or lets them finish with ``wait_all``; then the step fails (a
retry runs only the branches that did not finish) and ``steps.<id>.errors`` lists why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio import workflow

from engine.definition import ParallelStep, StepBase
from engine.workflow._flow import Returned, RunFailedError, Scope, StepFailedError
from engine.workflow._steps._run import Run
from engine.workflow._types import ParallelProgress

__all__ = ["run_parallel"]


async def run_parallel(run: Run, step: ParallelStep, scope: Scope, attempt: int) -> Any:
    """Run the branches not yet finished, at once, and join them.

    Returns:
        ``{branch: the output of its last completed step}``, in the definition's order.

    Raises:
        StepFailedError: Retryable: a branch failed.
        RunCancelledError: The run was cancelled (the branches were stopped).
    """
    fresh: ParallelProgress = {"outputs": {}, "errors": []}
    progress = run.parallels.setdefault(step.id, fresh) if scope.tracked else fresh
    if attempt > 1:
        failed = {error["branch"] for error in progress["errors"]}
        run.forget(s for name in failed for s in _steps(step.branches[name]))
        progress["errors"] = []
    outputs = progress["outputs"]
    errors = progress["errors"]
    ended = set(outputs) | {error["branch"] for error in errors}
    todo = [name for name in step.branches if name not in ended]
    tasks: dict[asyncio.Task[Returned | None], str] = {
        asyncio.create_task(run.run_block(step.branches[name], scope)): name for name in todo
    }
    # This flow waits while its branches run: one flow becomes len(tasks).
    run.flows += len(tasks) - 1
    stopping = False
    try:
        while tasks:
            await workflow.wait_condition(lambda: any(task.done() for task in tasks))
            # In start order, not in the order of a set: replay must see the same order.
            for task in [task for task in tasks if task.done()]:
                name = tasks.pop(task)
                run.flows -= 1
                if task.cancelled():
                    errors.append({"branch": name, "error": "stopped: another branch failed"})
                    continue
                error = task.exception()
                if error is None:
                    outputs[name] = run.record.last_output(step.branches[name])
                elif isinstance(error, RunFailedError):
                    errors.append({"branch": name, "error": str(error)})
                    if step.on_branch_error == "fail_fast" and not stopping:
                        stopping = True
                        for other in tasks:
                            other.cancel()
                else:  # cancelled run, continue-as-new, an unforeseen error: the step's own
                    raise error
            if tasks and not stopping:
                # A branch ended while others still wait: the run waits again (a caller that
                # answered the branch's last action hears of the others' now).
                waiting = next(iter(run.actions), None)
                if waiting is not None:
                    run.suspend("waiting", waiting.step_id)
                else:
                    run.suspend("running", step.id)
    finally:
        for task in tasks:
            task.cancel()
        run.flows -= len(tasks) - 1
    run.record.item_errors(step.id, errors)
    if errors:
        first = errors[0]
        raise StepFailedError(
            f"branch '{first['branch']}' failed: {first['error']}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            retryable=True,
            output={name: outputs.get(name) for name in step.branches},
        )
    run.parallels.pop(step.id, None)
    return {name: outputs[name] for name in step.branches}


def _steps(block: Sequence[StepBase]) -> list[StepBase]:
    return [inner for step in block for inner in (step, *step.nested_steps())]
