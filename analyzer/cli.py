"""`celery-postmortem`: a thin typer layer over the library; it picks a renderer and an exit code.

Exit codes: 0 nothing at or above `--fail-on` (or healthy when not given), 1 findings at or above
it, 2 usage or input error (one line on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from analyzer.categories import SEVERITIES, SEVERITY_RANK

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Read what a broken Celery deployment left behind and say what went wrong first.")

FORMATS = ("terminal", "json")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"celery-postmortem: {message}", err=True)
    return typer.Exit(2)


@app.command()
def analyze(
    paths: Annotated[list[Path], typer.Argument(help="Bundle directories, archives or files.")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")]
    = "terminal",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    log_format: Annotated[list[str] | None, typer.Option(
        "--log-format", help="A %-style logging format used by the worker (repeatable).")] = None,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra rule directory (repeatable).")]
    = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="Only these rule ids or categories.")]
    = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", help="Skip these rule ids or categories.")]
    = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Exit 1 when a finding is at or above: critical, error, warning.")] = None,
    color: Annotated[bool | None, typer.Option("--color/--no-color", help="Force colour on or off.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """Analyse a bundle and report root causes, findings and coverage."""
    from analyzer.api import open_bundle
    from analyzer.bundle import BundleError
    from analyzer.renderers import RenderOptions, registry
    from analyzer.sources.log_format import LogFormatError

    renderers = registry()
    if format not in renderers:
        raise _fail(f"unknown format {format!r}; choose one of {', '.join(sorted(renderers))}")
    if fail_on is not None and fail_on not in SEVERITIES:
        raise _fail(f"--fail-on takes one of {', '.join(SEVERITIES)}, not {fail_on!r}")
    for p in paths:
        if not p.exists():
            raise _fail(f"{p}: no such file or directory")
    try:
        bundle = open_bundle(paths, log_formats=log_format or ())
        report = bundle.report(rule_dirs=rules or (), select=select or (), ignore=ignore or ())
    except (BundleError, LogFormatError) as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        if debug:
            raise
        raise _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)") from None
    use_color = color if color is not None else (output is None and sys.stdout.isatty()
                                                 and "NO_COLOR" not in __import__("os").environ)
    text = renderers[format](report, RenderOptions(color=bool(use_color)))
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if fail_on is not None:
        worst = max((SEVERITY_RANK[f.severity] for f in report.findings), default=-1)
        raise typer.Exit(1 if worst >= SEVERITY_RANK[fail_on] else 0)


@app.callback()
def _main() -> None:
    """celery-postmortem"""


def main() -> None:
    app()
