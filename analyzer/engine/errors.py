"""Errors of the rule engine, each carrying where in the input it happened.

`EngineError` is the base: a message plus an optional location (`path`, 1-based `line` and
`column`).  `str(error)` renders as `path:line:col: message`, the form the CLI prints.
Loaders collect these in lists instead of raising, so one broken rule never hides the others.
"""

from __future__ import annotations


class EngineError(Exception):
    """A problem with a rule, located in its source (a file, or the `when` string alone)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.rule = rule

    @property
    def location(self) -> str:
        parts = [self.path or "<rule>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConditionError(EngineError):
    """A `when` condition does not parse, names an unknown column, or mixes types.

    `offset` is the 0-based character offset inside the `when` string; `line`/`column` are
    relative to the `when` string until a loader relocates them into the rule file.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int = 0,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=line, column=column, rule=rule)
        self.offset = offset


class RuleError(EngineError):
    """A rule file is not valid TOML, or a field is missing, unknown or out of range."""


class EvaluationError(EngineError):
    """Polars failed while evaluating a rule (a bug in the rule or the engine, not in the logs)."""
