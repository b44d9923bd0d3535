"""The one exception root of the engine.

Every error the engine raises on purpose derives from :class:`EngineError`. Each subclass
declares the gRPC status code the control plane answers with (as the code's name, so that the
pure layers need not import grpc) and a stable, machine-readable ``reason`` in UPPER_SNAKE case.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["EngineError", "InvalidFieldError"]


class EngineError(Exception):
    """Root of every error the engine raises on purpose.

    Attributes:
        code: Name of the gRPC status code the control plane maps this error to.
        reason: Stable identifier of the error kind, for clients to branch on.
    """

    code: ClassVar[str] = "INTERNAL"
    reason: ClassVar[str] = "ENGINE_ERROR"


class InvalidFieldError(EngineError):
    """A request field that is missing or malformed; ``field`` names it (a path like
    ``spec.cron[1]``) and ``description`` says what is wrong with it."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_FIELD"

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description
