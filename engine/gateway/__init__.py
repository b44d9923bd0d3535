"""The HTTP/JSON face of the gRPC API (Google's HTTP mapping, from the protos' ``google.api.http``
options) and its OpenAPI document; the threaded HTTP server it shares with the MCP endpoint."""

from __future__ import annotations

from engine.gateway._app import HTTP_STATUS, HttpApiServer, gateway_app
from engine.gateway._openapi import openapi
from engine.gateway._routes import SERVICE_MODULES, Route, routes
from engine.gateway._serve import PlaneFace, ThreadedServer

__all__ = [
    "HTTP_STATUS",
    "SERVICE_MODULES",
    "HttpApiServer",
    "PlaneFace",
    "Route",
    "ThreadedServer",
    "gateway_app",
    "openapi",
    "routes",
]
