"""The engine's tools for agents: discover definitions, start and read runs, take and answer
actions, send events, cancel.

The descriptions are written for a model that has never read the engine's README: what the tool
does, when to use it, and what an answer must look like. Results are structured content (the
engine's JSON, with the API's field names); a refusal is a tool error that says what was wrong.
"""

# No `from __future__ import annotations`: the MCP SDK reads each tool's annotations, and the
# resolver of ask_person is local to build_server.
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

from mcp.server import MCPServer
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import AcceptedElicitation, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, create_model

from engine.api.v1 import definition_service_pb2 as definition_pb
from engine.api.v1 import resources_pb2
from engine.api.v1 import workflow_service_pb2 as workflow_pb
from engine.definition import (
    DefinitionError,
    DelegateStep,
    McpCallStep,
    PromptStep,
    ShellStep,
    StepBase,
    load_definition,
)
from engine.mcp._caller import Caller, CallRefusedError
from engine.wire import enum_value, message_json, to_struct, to_value

__all__ = ["INSTRUCTIONS", "build_server"]

INSTRUCTIONS: Final = """\
This server drives durable workflows of a workflow engine, for one organization (the token's).
A workflow definition is a list of steps; a run of it pauses at each step that needs the outside
world with a *pending action*, until someone answers it:
- delegate: an instruction for an AI agent (answer with the JSON the instruction asks for);
- prompt: a question for a person (confirm: true/false; choice: one of the options; text: a
  string; info: null to acknowledge);
- shell: a command for a runner ({"exit_code": int, "stdout": str, "stderr": str});
- mcp_call: a tool call for an MCP executor (the tool's JSON result).
As an agent: call take_action with your agent name (for example "@task") to receive the next
delegate action addressed to you, do what its instruction says, then submit_result with its
action_id. list_inbox shows what waits; start_run starts a run; get_run shows where it is."""

ActionType = Literal["delegate", "shell", "mcp_call"]
_EXPECTED: Final = {
    "delegate": "the JSON value its instruction asks for",
    "shell": 'an object {"exit_code": integer, "stdout": string, "stderr": string}',
    "mcp_call": "the called tool's JSON result",
    "prompt/confirm": "true or false",
    "prompt/choice": "one of parameters.options",
    "prompt/text": "a string",
    "prompt/info": "null (to acknowledge it)",
}
_HISTORY_SHOWN: Final = 20
_READ: Final = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
_WRITE: Final = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def build_server(
    caller: Callable[[], Caller],
    *,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer:
    """The MCP server with the engine's tools; ``caller()`` is who the current request speaks
    for (one fixed caller over stdio, the bearer token's over HTTP, verified by
    ``token_verifier``)."""
    server = MCPServer(
        "engine",
        version=_version(),
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        token_verifier=token_verifier,
        auth=auth,
    )

    @server.tool(
        annotations=_READ,
        description="List the organization's workflow definitions (name, version, description)."
        " Use describe_definition to see one's inputs and steps.",
    )
    async def list_definitions(
        name: Annotated[str, Field(description="Only versions of this definition")] = "",
    ) -> dict[str, Any]:
        request = definition_pb.ListDefinitionsRequest(name=name, page_size=200)
        response = await _call(caller().call, caller().definitions.ListDefinitions, request)
        definitions = [
            {k: v for k, v in message_json(d).items() if k != "yaml"} for d in response.definitions
        ]
        return {"definitions": definitions}

    @server.tool(
        annotations=_READ,
        description="Describe a workflow definition: its inputs (type, required, default, "
        "allowed values) and its steps, with what each external step asks for and how it is "
        "answered. Read this before start_run.",
    )
    async def describe_definition(
        name: Annotated[str, Field(description="The definition's name")],
        version: Annotated[int, Field(description="A version; 0 for the latest", ge=0)] = 0,
    ) -> dict[str, Any]:
        request = definition_pb.GetDefinitionRequest(name=name, version=version)
        response = await _call(caller().call, caller().definitions.GetDefinition, request)
        return _described(response.definition)

    @server.tool(
        annotations=_WRITE,
        description="Start a run of a registered definition with its inputs, and wait until it "
        "first stops: the answer has its status and the actions it waits for (or its result). "
        "Pass the same request_id again to retry safely after an error.",
    )
    async def start_run(
        definition: Annotated[str, Field(description="The definition's name")],
        inputs: Annotated[
            dict[str, Any] | None, Field(description="The inputs, by name (see describe)")
        ] = None,
        version: Annotated[int, Field(description="A version; 0 for the latest", ge=0)] = 0,
        request_id: Annotated[str, Field(description="Makes a retry safe")] = "",
    ) -> dict[str, Any]:
        request = workflow_pb.StartWorkflowRequest(
            definition_name=definition,
            definition_version=version,
            inputs=to_struct(inputs or {}),
            request_id=request_id,
            wait_for_suspension=True,
        )
        response = await _call(caller().call, caller().workflows.StartWorkflow, request)
        return _with_expected(message_json(response))

    @server.tool(
        annotations=_READ,
        description="Show a run: status (running, waiting, completed, failed, cancelled), "
        "current step, the actions it waits for, its state, result or error, and its latest "
        "step history.",
    )
    async def get_run(
        workflow_id: Annotated[str, Field(description="The run's workflow_id")],
    ) -> dict[str, Any]:
        request = workflow_pb.GetWorkflowRequest(workflow_id=workflow_id)
        response = await _call(caller().call, caller().workflows.GetWorkflow, request)
        run = message_json(response.workflow)
        history = run.get("history", [])
        if len(history) > _HISTORY_SHOWN:
            run["history"] = history[-_HISTORY_SHOWN:]
            run["history_omitted"] = len(history) - _HISTORY_SHOWN
        return _with_expected(run)

    @server.tool(
        annotations=_WRITE,
        description="Take the next action addressed to you, waiting up to wait_seconds for one: "
        "for an agent, a delegate action for your agent name (e.g. '@task'); its parameters "
        "hold the instruction and its context. It is yours until you submit_result (or "
        "release_action); meanwhile nobody else gets it. Returns {action: null} when none "
        "came in time: call again.",
    )
    async def take_action(
        agent: Annotated[str, Field(description="Your agent name, as the definition writes it")],
        action_type: Annotated[ActionType, Field(description="The kind of action")] = "delegate",
        wait_seconds: Annotated[
            float, Field(description="Longest to wait for one", ge=0, le=60)
        ] = 30.0,
    ) -> dict[str, Any]:
        try:
            claimed = await caller().claim(action_type, agent, wait_seconds)
        except CallRefusedError as refused:
            raise ToolError(str(refused)) from None
        if claimed is None:
            return {"action": None}
        return {
            "action": claimed.action,
            "delivery": claimed.delivery,
            "expected_result": _EXPECTED[claimed.type],
        }

    @server.tool(
        annotations=_WRITE,
        description="Answer a pending action by its action_id: result is the JSON value it "
        "asks for (see expected_result), or set error to a message when it cannot be done "
        "(the step's retry and on_error rules apply). For an action you took with "
        "take_action, workflow_id may be left empty; for a prompt or an action you read in "
        "list_inbox or get_run, give its workflow_id. A result of the wrong shape is refused "
        "with the shape expected, and nothing changes: answer again.",
    )
    async def submit_result(
        action_id: Annotated[str, Field(description="The action's action_id")],
        result: Annotated[Any, Field(description="The answer (JSON)")] = None,
        error: Annotated[str, Field(description="Why it could not be done")] = "",
        workflow_id: Annotated[str, Field(description="The run's workflow_id")] = "",
        request_id: Annotated[str, Field(description="Makes a retry safe")] = "",
    ) -> dict[str, Any]:
        held = caller()
        if action_id in held.claims:
            try:
                await held.report(action_id, result, error or None)
            except CallRefusedError as refused:
                raise ToolError(str(refused)) from None
            return {"accepted": True, "action_id": action_id}
        if not workflow_id:
            raise ToolError(
                f"action '{action_id}' was not taken with take_action here: give its "
                "workflow_id to answer it by id"
            )
        request = workflow_pb.SubmitResultRequest(
            workflow_id=workflow_id,
            action_id=action_id,
            result=to_value(result),
            error=error,
            request_id=request_id,
        )
        response = await _call(held.call, held.workflows.SubmitResult, request)
        return {"accepted": True, "action_id": action_id, **_with_expected(message_json(response))}

    async def question(workflow_id: str, action_id: str) -> Elicit[BaseModel]:
        """The form that asks the client's person a prompt's question (a resolver)."""
        request = workflow_pb.GetWorkflowRequest(workflow_id=workflow_id)
        response = await _call(caller().call, caller().workflows.GetWorkflow, request)
        for action in message_json(response.workflow).get("pending_actions", []):
            if action["action_id"] == action_id:
                if action["type"] != "prompt":
                    raise ToolError(f"action '{action_id}' is a {action['type']}, not a prompt")
                return Elicit(_question_text(action), _form(action["parameters"]))
        raise ToolError(f"run '{workflow_id}' does not wait for action '{action_id}'")

    @server.tool(
        annotations=_WRITE,
        description="Ask the person using this MCP client a prompt's question (the client "
        "shows a form: yes/no, a choice, a text, or an acknowledgement), and submit their "
        "answer. Only for clients that support elicitation; otherwise use submit_result with "
        "the person's answer. Returns where the run went, or {answered: false} when they "
        "declined.",
    )
    async def ask_person(
        workflow_id: Annotated[str, Field(description="The run's workflow_id")],
        action_id: Annotated[str, Field(description="The prompt's action_id")],
        answer: Annotated[ElicitationResult[BaseModel], Resolve(question)],
    ) -> dict[str, Any]:
        if not isinstance(answer, AcceptedElicitation):
            return {"answered": False, "action": answer.action}
        value = next(iter(answer.data.model_dump().values()), None)
        if "acknowledge" in type(answer.data).model_fields:
            value = None  # an info prompt is acknowledged with null
        elif "choice" in type(answer.data).model_fields:
            options: dict[str, Any] = getattr(type(answer.data), "options_shown", {})
            value = options.get(str(value), value)
        request = workflow_pb.SubmitResultRequest(
            workflow_id=workflow_id, action_id=action_id, result=to_value(value)
        )
        response = await _call(caller().call, caller().workflows.SubmitResult, request)
        return {"answered": True, "answer": value, **_with_expected(message_json(response))}

    @server.tool(
        annotations=_WRITE,
        description="Give back an action you took but will not do: it goes to the next "
        "executor of its kind once its lease runs out (within a minute).",
    )
    async def release_action(
        action_id: Annotated[str, Field(description="The action's action_id")],
    ) -> dict[str, Any]:
        if not await caller().release(action_id):
            raise ToolError(f"action '{action_id}' is not held here (not taken, or answered)")
        return {"released": True, "action_id": action_id}

    @server.tool(
        annotations=_READ,
        description="List the actions waiting in the organization's runs, newest first "
        "(filter by type, agent, definition or run). Prompts here are answered with "
        "submit_result and their workflow_id.",
    )
    async def list_inbox(
        action_type: Annotated[
            Literal["", "delegate", "prompt", "shell", "mcp_call"],
            Field(description="Only this kind"),
        ] = "",
        agent: Annotated[str, Field(description="Only delegate actions for this agent")] = "",
        definition: Annotated[str, Field(description="Only runs of this definition")] = "",
        workflow_id: Annotated[str, Field(description="Only this run")] = "",
        page_size: Annotated[int, Field(ge=1, le=200)] = 50,
        page_token: Annotated[str, Field(description="next_page_token of a page")] = "",
    ) -> dict[str, Any]:
        request = workflow_pb.ListPendingActionsRequest(
            action_type=resources_pb2.ActionType.ValueType(
                enum_value(resources_pb2.ActionType, action_type)
            ),
            agent=agent,
            definition_name=definition,
            workflow_id=workflow_id,
            page_size=page_size,
            page_token=page_token,
        )
        response = await _call(caller().call, caller().workflows.ListPendingActions, request)
        return _with_expected(message_json(response))

    @server.tool(
        annotations=_WRITE,
        description="Send a named event with a JSON payload: to one run (workflow_id), or to "
        "every run of the organization waiting for that event name whose correlation matches. "
        "Runs wait for events with wait_for steps (e.g. 'pr_merged').",
    )
    async def send_event(
        name: Annotated[str, Field(description="The event's name")],
        payload: Annotated[Any, Field(description="The event's JSON payload")] = None,
        workflow_id: Annotated[str, Field(description="Only this run")] = "",
        request_id: Annotated[str, Field(description="Makes a retry safe")] = "",
    ) -> dict[str, Any]:
        request = workflow_pb.SendEventRequest(
            name=name, payload=to_value(payload), workflow_id=workflow_id, request_id=request_id
        )
        response = await _call(caller().call, caller().workflows.SendEvent, request)
        return {"workflow_ids": list(response.workflow_ids)}

    @server.tool(
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False),
        description="Cancel a run (its steps' compensations run first).",
    )
    async def cancel_run(
        workflow_id: Annotated[str, Field(description="The run's workflow_id")],
        reason: Annotated[str, Field(description="Why, for the run's history")] = "",
    ) -> dict[str, Any]:
        request = workflow_pb.CancelWorkflowRequest(workflow_id=workflow_id, reason=reason)
        await _call(caller().call, caller().workflows.CancelWorkflow, request)
        return {"cancelled": True, "workflow_id": workflow_id}

    return server


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("engine")
    except metadata.PackageNotFoundError:  # a checkout that was not installed
        return ""


async def _call(call: Any, method: Any, request: Any) -> Any:
    try:
        return await call(method, request)
    except CallRefusedError as refused:
        raise ToolError(str(refused)) from None


def _with_expected(data: dict[str, Any]) -> dict[str, Any]:
    """Every pending action in ``data`` with the shape of the answer it expects."""
    for action in data.get("pending_actions", []):
        action["expected_result"] = _expected(action)
    return data


def _expected(action: dict[str, Any]) -> str:
    kind = action.get("type", "")
    if kind == "prompt":
        kind = f"prompt/{(action.get('parameters') or {}).get('prompt_type', 'text')}"
    return _EXPECTED.get(kind, "a JSON value")


def _described(definition: resources_pb2.Definition) -> dict[str, Any]:
    """A definition as an agent needs to read it: inputs, and each step and what it asks."""
    described = {k: v for k, v in message_json(definition).items() if k != "yaml"}
    try:
        loaded = load_definition(definition.yaml)
    except DefinitionError:  # registered, so it loads; an older engine's text might not
        described["yaml"] = definition.yaml
        return described
    described["inputs"] = {
        name: spec.model_dump(exclude_none=True) for name, spec in loaded.inputs.items()
    }
    described["steps"] = [_step(step) for step in loaded.iter_steps()]
    return described


def _step(step: StepBase) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": step.id, "type": step.step_type}
    if isinstance(step, DelegateStep):
        shown |= {
            "agent": step.agent,
            "instruction": step.instruction,
            "answered_by": "the agent named, with take_action then submit_result",
        }
    elif isinstance(step, PromptStep):
        shown |= {
            "prompt_type": step.prompt_type,
            "message": step.message,
            "answered_by": "a person, with submit_result by action_id and workflow_id",
        }
        if step.options is not None:
            shown["options"] = step.options
    elif isinstance(step, ShellStep):
        shown |= {"command": step.command, "answered_by": "a shell runner (enginectl work shell)"}
    elif isinstance(step, McpCallStep):
        shown |= {
            "server": step.server,
            "tool": step.tool,
            "answered_by": "an MCP executor (enginectl work mcp)",
        }
    if isinstance(step, DelegateStep | PromptStep | ShellStep | McpCallStep):
        shown["expected_result"] = _expected(
            {
                "type": step.step_type,
                "parameters": {"prompt_type": getattr(step, "prompt_type", "")},
            }
        )
    return shown


def _question_text(action: dict[str, Any]) -> str:
    parameters = action.get("parameters") or {}
    return str(parameters.get("message") or f"Answer step '{action.get('step_id')}'")


def _form(parameters: dict[str, Any]) -> type[BaseModel]:
    """The elicitation form of a prompt: one field of a primitive type, as MCP requires."""
    kind = parameters.get("prompt_type", "text")
    default = parameters.get("default")
    if kind == "confirm":
        field: Any = (bool, Field(default=bool(default), description="yes or no"))
        return create_model("Confirm", approve=field)
    if kind == "choice":
        options = list(parameters.get("options") or [])
        shown = {str(option): option for option in options}
        choices = tuple(shown) or ("",)
        chosen: Any = (Literal[choices], Field(description="one of the options"))
        form = create_model("Choice", choice=chosen)
        form.options_shown = shown  # type: ignore[attr-defined]  # the options by their text
        return form
    if kind == "info":
        return create_model("Info", acknowledge=(bool, Field(default=True, description="seen")))
    text_default = default if isinstance(default, str) else ""
    return create_model("Text", text=(str, Field(default=text_default, description="answer")))
