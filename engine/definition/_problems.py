"""Problems found in a definition, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

from engine.errors import EngineError

__all__ = ["DefinitionError", "InputError", "Problem", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or suspicious) in a definition, located in its source text.

    Attributes:
        source: Where the text came from (a file path as given, or ``"<string>"``).
        line: 1-based line of the offending text.
        column: 1-based column of the offending text.
        path: Where in the definition, such as ``steps[2].then[0].options`` (empty for the
            document as a whole).
        message: What is wrong, in words a workflow author understands.
        severity: ``"error"`` (the definition is rejected) or ``"warning"`` (it is accepted).
    """

    source: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        # The `file:line:column: message` shape is what editors and CI annotators parse.
        prefix = f"{self.source}:{self.line}:{self.column}: "
        if self.severity == "warning":
            return f"{prefix}warning: {self.message}"
        return prefix + self.message


class DefinitionError(EngineError):
    """A workflow definition that cannot be loaded.

    Attributes:
        problems: Every problem found, errors and warnings, in source order. At least one of
            them is an error.
    """

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_DEFINITION"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.problems)

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that made the definition invalid."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """The problems that alone would not have rejected the definition."""
        return tuple(p for p in self.problems if p.severity == "warning")

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class InputError(EngineError):
    """Inputs given to a run that do not match the definition's ``inputs`` schema.

    Attributes:
        messages: One human-readable message per problem, each naming the input.
    """

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_INPUT"

    def __init__(self, messages: Iterable[str]) -> None:
        self.messages: tuple[str, ...] = tuple(messages)
        super().__init__(self.messages)

    def __str__(self) -> str:
        return "\n".join(self.messages)
