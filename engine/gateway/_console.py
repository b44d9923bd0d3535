"""The web console's routes: its static page (``/console/``) and the graph of a definition.

The page itself (``console/``: HTML, CSS and a script, no build step) talks to the HTTP/JSON API
with the token its user signs in with, so it can do exactly what that token may. The one thing
the API has no call for is a definition drawn as a graph: ``GET /console/graph/{name}`` fetches
the definition with the caller's token (``GetDefinition``: the same org pinning and refusals)
and answers with the Mermaid flowchart ``enginectl graph`` prints, which the page draws with
Mermaid's own script when ``make setup`` has fetched it (``console/vendor/``), and shows as text
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from engine.api.v1 import definition_service_pb2 as pb
from engine.api.v1 import definition_service_pb2_grpc as pb_grpc
from engine.definition import DefinitionError, load_definition, mermaid
from engine.gateway._codes import bad_request, json_error, refusal

__all__ = ["CONSOLE_DIR", "console_routes"]

CONSOLE_DIR: Final = Path(__file__).resolve().parent / "console"
"""The console's files (``vendor/`` holds what ``make setup`` fetched from the npm registry)."""
_TIMEOUT: Final = 30.0


def console_routes(channel: Callable[[], grpc.aio.Channel]) -> list[BaseRoute]:
    """``/`` (to the console), ``/console/graph/{name}`` and the console's files."""

    async def graph(request: Request) -> Response:
        version = request.query_params.get("version", "0")
        if not version.isdigit():
            problem = f"not a version number: {version!r}"
            return json_error(
                400, "INVALID_ARGUMENT", f"version: {problem}", [bad_request("version", problem)]
            )
        authorization = request.headers.get("authorization")
        stub = pb_grpc.DefinitionServiceStub(channel())
        try:
            found = await stub.GetDefinition(
                pb.GetDefinitionRequest(name=request.path_params["name"], version=int(version)),
                metadata=(("authorization", authorization),) if authorization else (),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            return refusal(error)
        definition = found.definition
        try:
            loaded = load_definition(definition.yaml, f"{definition.name}.yaml")
        except DefinitionError as error:  # registered definitions load; say so if one does not
            problem = f"the definition does not load: {error}"
            return json_error(400, "FAILED_PRECONDITION", problem, [bad_request("name", problem)])
        return JSONResponse(
            {"name": definition.name, "version": definition.version, "mermaid": mermaid(loaded)}
        )

    async def home(_: Request) -> Response:
        return RedirectResponse("/console/")

    return [
        Route("/", home, methods=["GET"]),
        Route("/console/graph/{name}", graph, methods=["GET"]),
        Mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console"),
    ]
