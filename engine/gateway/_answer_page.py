"""The page an answer link opens (``/answer/{link}``): the prompt and the control to answer it.

Plain HTML, served by the HTTP API, with no script: the question, who answers, and a form with
the right control for the prompt (Yes/No, one button per option, a text box, an acknowledgement;
one button for an approve or a reject link). Opening the page answers nothing (a chat's link
preview must not approve a deploy); the form's POST does, through ``AnswerWithLink``. Readable
on a phone, usable with the keyboard (buttons and a labelled text box).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any, Final

import grpc
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from engine.api.v1 import link_service_pb2 as pb
from engine.api.v1 import link_service_pb2_grpc as pb_grpc
from engine.gateway._codes import HTTP_STATUS
from engine.wire import from_struct, from_value, to_value

__all__ = ["answer_page"]

_STYLE: Final = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
    "pre{white-space:pre-wrap;background:#f4f4f4;padding:1rem;border-radius:6px}"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0;cursor:pointer}"
    "textarea{width:100%;min-height:6rem;font:inherit}.note{color:#555}"
)
_TIMEOUT: Final = 30.0


def answer_page(channel: Callable[[], grpc.aio.Channel]) -> Callable[[Request], Any]:
    """The handler of ``GET`` and ``POST /answer/{link}``."""

    async def handle(request: Request) -> Response:
        link = request.path_params["link"]
        stub = pb_grpc.LinkServiceStub(channel())
        try:
            shown = await stub.GetAnswerLink(pb.GetAnswerLinkRequest(link=link), timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return _page("This link cannot answer", _refusal(error), status=_status(error))
        if request.method == "GET":
            return _page("A question for you", _form(shown))
        form = await request.form()
        try:
            result = _result(shown, form)
        except ValueError as bad:
            return _page("A question for you", _form(shown, str(bad)), status=400)
        try:
            answered = await stub.AnswerWithLink(
                pb.AnswerWithLinkRequest(link=link, result=to_value(result)), timeout=_TIMEOUT
            )
        except grpc.aio.AioRpcError as error:
            return _page("Not answered", _refusal(error), status=_status(error))
        status = json_format.MessageToDict(answered.advance).get("status", "")
        where = status.removeprefix("RUN_STATUS_").lower() or "on its way"
        return _page("Answered, thank you", f"<p>The run is now <b>{html.escape(where)}</b>.</p>")

    return handle


def _form(shown: pb.GetAnswerLinkResponse, problem: str = "") -> str:
    parameters = from_struct(shown.action.parameters)
    kind = str(parameters.get("prompt_type", "text"))
    parts = [f"<pre>{html.escape(str(parameters.get('message', '')))}</pre>"]
    parts.append(f'<p class="note">You answer as <b>{html.escape(shown.subject)}</b>.</p>')
    if problem:
        parts.append(f'<p role="alert"><b>{html.escape(problem)}</b></p>')
    parts.append('<form method="post">')
    if shown.fixed:
        label = json.dumps(from_value(shown.answer))
        parts.append(
            f'<button name="fixed" value="1" autofocus>Answer {html.escape(label)}</button>'
        )
    elif kind == "confirm":
        parts.append('<button name="answer" value="true" autofocus>Yes</button>')
        parts.append('<button name="answer" value="false">No</button>')
    elif kind == "choice":
        for index, option in enumerate(parameters.get("options") or []):
            text = html.escape(option if isinstance(option, str) else json.dumps(option))
            parts.append(f'<button name="choice" value="{index}">{text}</button>')
    elif kind == "info":
        parts.append('<button name="answer" value="seen" autofocus>Acknowledge</button>')
    else:
        parts.append('<label for="text">Your answer</label>')
        parts.append('<textarea id="text" name="text" required autofocus></textarea>')
        parts.append('<button type="submit">Send</button>')
    parts.append("</form>")
    return "".join(parts)


def _result(shown: pb.GetAnswerLinkResponse, form: Any) -> Any:
    """The answer the form gives, in the prompt's own terms.

    Raises:
        ValueError: The form does not answer the prompt.
    """
    if shown.fixed:
        return None  # the link's own answer is given
    parameters = from_struct(shown.action.parameters)
    kind = parameters.get("prompt_type", "text")
    if kind == "confirm":
        if form.get("answer") not in ("true", "false"):
            raise ValueError("choose Yes or No")
        return form.get("answer") == "true"
    if kind == "choice":
        options = parameters.get("options") or []
        index = str(form.get("choice", ""))
        if not index.isdigit() or int(index) >= len(options):
            raise ValueError("choose one of the options")
        return options[int(index)]
    if kind == "info":
        return None
    text = str(form.get("text", "")).strip()
    if not text:
        raise ValueError("write an answer")
    return text


def _refusal(error: grpc.aio.AioRpcError) -> str:
    return f"<p>{html.escape(error.details() or error.code().name)}</p>"


def _status(error: grpc.aio.AioRpcError) -> int:
    return HTTP_STATUS.get(error.code(), 500)


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})
