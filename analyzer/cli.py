"""`celery-postmortem`: a thin typer layer over the library; it picks a renderer and an exit code.

Exit codes: 0 nothing at or above `--fail-on` (or always, without it), 1 findings at or above it,
2 usage or input error, a rule that failed to load or evaluate, or an inconclusive verdict (nothing
in the input could be analysed): one line on stderr, never a traceback; the report is still written
when there is one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from analyzer.categories import SEVERITIES, SEVERITY_RANK
from analyzer.cli_help import PlainCommand, PlainGroup

if TYPE_CHECKING:
    from analyzer.api import Bundle
    from analyzer.engine.rule import Rule
    from analyzer.report import Report

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(cls=PlainGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings=HELP,
                  help="Read what a broken Celery deployment left behind and say what went wrong first.")

FORMATS = ("terminal", "json", "markdown", "html", "sarif", "junit", "github")  # = renderers.registry()
FAIL_ON = tuple(reversed(SEVERITIES))  # most severe first, as --help and the README list them


def _echo(text: str, *, err: bool = False, lines: bool = False) -> None:
    """Print text that may quote a bundle or a rule file: control characters shown, not obeyed
    (`analyzer.printable`); line feeds kept with `lines`."""
    from analyzer.printable import printable

    typer.echo(printable(text, lines=lines), err=err)


def _fail(message: str) -> typer.Exit:
    _echo(f"celery-postmortem: {message}", err=True)
    return typer.Exit(2)


def _streams_to_files(paths: list[Path], stack: ExitStack) -> list[Path]:
    """`-`, `/dev/stdin` and named pipes given on the command line, copied to files of a private
    folder (named `stdin` or as the pipe is) so the bundle reader sees regular files it can read
    twice. Only the user's own arguments: inside a bundle, pipes and links are still refused."""
    import shutil
    import stat
    import tempfile

    out = []
    for p in paths:
        is_stream = str(p) == "-"
        if not is_stream:
            try:
                mode = os.stat(p).st_mode
            except OSError:
                mode = 0
            is_stream = stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)
        if not is_stream:
            out.append(p)
            continue
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cpm-stdin-")))
        copy = folder / ("stdin" if str(p) in ("-", "/dev/stdin") else p.name)
        with copy.open("wb") as dst:
            if str(p) == "-":
                shutil.copyfileobj(sys.stdin.buffer, dst, 1 << 20)
            else:
                with p.open("rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
        out.append(copy)
    return out


def _fetch_urls(sources: list[str], stack: ExitStack) -> list[Path]:
    """Each source as a path: a URL (`fleet.remote`) copied to a private folder that lives as long as
    `stack`, anything else as given."""
    from analyzer.fleet.sources import is_url

    out = []
    for s in sources:
        if not is_url(s):
            out.append(Path(s))
            continue
        from analyzer.fleet.remote import RemoteError, fetched

        try:
            out.append(stack.enter_context(fetched(s)))
        except RemoteError as exc:
            raise _fail(str(exc)) from None
    return out


def _require_paths(paths: list[Path]) -> None:
    for p in paths:
        if not p.exists():
            raise _fail(f"{p}: no such file or directory")


@contextmanager
def _guarded(debug: bool) -> Iterator[None]:
    """Reading and analysing: a bundle or `--log-format` that cannot be used is one line on stderr
    and exit 2, and so is an internal error (its traceback with `debug`)."""
    from analyzer.bundle import BundleError
    from analyzer.sources.log_format import LogFormatError

    try:
        yield
    except typer.Exit:
        raise
    except (BundleError, LogFormatError) as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:
        if debug:
            raise
        raise _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)") from None


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Writing an output (`what`: the option and its path): an OSError is one line and exit 2."""
    try:
        yield
    except OSError as exc:
        raise _fail(f"{what}: cannot write: {exc.strerror or exc}") from None


@app.command(cls=PlainCommand)
def analyze(
    sources: Annotated[list[str], typer.Argument(
        metavar="PATH...", help="Bundle directories, archives or files, or URLs (s3://, gs://, http(s)://, file://: "
        "credentials from the environment); - (or a named pipe) reads standard input.", show_default=False)],
    format: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="FORMAT", show_default="terminal",
        help=f"Output format: {', '.join(FORMATS)} (any case).")] = None,
    output: Annotated[list[str] | None, typer.Option(
        "--output", "-o", metavar="[FORMAT=]PATH",
        help="Write a report here instead of stdout (repeatable: -o report.sarif -o report.html). The format is "
             "FORMAT= if given, else --format, else the file's extension (.json .sarif .html .md .xml .txt).")]
    = None,
    log_format: Annotated[list[str] | None, typer.Option(
        "--log-format", metavar="FORMAT", help="A %-style logging format used by the worker (repeatable).")] = None,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", metavar="DIR", help="Extra rule directory (repeatable).")]
    = None,
    select: Annotated[list[str] | None, typer.Option(
        "--select", metavar="RULE", help="Only these rule ids, id prefixes or categories (repeatable).")]
    = None,
    ignore: Annotated[list[str] | None, typer.Option(
        "--ignore", metavar="RULE", help="Skip these rule ids, id prefixes or categories (repeatable); the verdict "
        "says how many findings this hid.")]
    = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", metavar="SEVERITY", help=f"Exit 1 when a finding is at or above: {', '.join(FAIL_ON)}.")] = None,
    color: Annotated[bool | None, typer.Option("--color/--no-color", help="Force colour on or off.")] = None,
    plots: Annotated[Path | None, typer.Option(
        "--plots", metavar="DIR",
        help="Also write the plots (PNG and SVG) to this directory; HTML output embeds them.")] = None,
    no_redact: Annotated[bool, typer.Option(
        "--no-redact", help="Show passwords and tokens found in the inputs (redacted by default).")] = False,
    core_executable: Annotated[Path | None, typer.Option(
        "--core-executable", metavar="FILE", help="The program that dumped the bundle's core files, when it is "
        "not in the bundle (a bundle's core.json may only name a file inside it).")] = None,
    path_prefix: Annotated[str, typer.Option(
        "--path-prefix", metavar="DIR", show_default=False,
        help="SARIF and github output: put DIR/ before every file path (file paths are relative to the current "
             "directory when the bundle is under it, else to the bundle).")] = "",
    tz: Annotated[str | None, typer.Option(
        "--tz", metavar="ZONE", show_default=False,
        help="Zone the logs were written in (e.g. Europe/Berlin): every time in the report keeps its value as "
             "written and gains that zone's UTC offset; plots are drawn in UTC.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """Analyse a bundle and report root causes, findings and coverage."""
    from analyzer.api import open_bundle
    from analyzer.renderers import RenderOptions, registry, rule_infos

    with ExitStack() as stack:  # copies of standard input live until the report is written
        renderers = registry()
        fmt = _choice("--format", format, list(renderers), "format") if format is not None else None
        targets = [_target(o, fmt, list(renderers)) for o in output or []]
        if fail_on is not None:
            fail_on = _choice("--fail-on", fail_on, list(SEVERITIES), "severity")
        for _, path in targets:
            _require_writable(f"-o {path}", path)
        if plots is not None:
            _require_writable(f"--plots {plots}", plots, directory=True)
        _require_executable(core_executable)
        _check_rule_options(rules or [], select or [], ignore or [])
        _require_zone(tz)
        given = _fetch_urls(sources, stack)  # after the checks: a URL may be a long download
        paths = _streams_to_files(given, stack)
        copies = {str(p) for p in paths} - {str(p) for p in given}  # standard input: no file to point at
        _require_paths(paths)
        with _guarded(debug):
            # the user's rules go to the bundle, so the records its pieces keep serve them too
            bundle = open_bundle(paths, rules=rules or None, log_formats=log_format or (),
                                 core_executable=core_executable, tz=tz)
            if sys.stderr.isatty():
                _parse_with_progress(bundle)
            report = bundle.report(select=select or (), ignore=ignore or ())
            if tz is not None:
                report = report.in_zone(tz)
        use_color = color if color is not None else (not targets and _colour_wanted())
        figures: tuple[tuple[str, bytes], ...] = ()
        if plots is not None or "html" in {fmt, *(f for f, _ in targets)}:
            from analyzer.plots import png_bytes, write_plots

            if plots is None:
                figures = png_bytes(bundle, report, redact=not no_redact)
            else:
                with _writing(f"--plots {plots}"):
                    written = write_plots(bundle, plots, report=report, redact=not no_redact)
                figures = written.pngs  # drawn once, for the files and for HTML
                for name, why in written.skipped:
                    _echo(f"note: --plots: no {name} plot ({why})", err=True)
        from analyzer.locations import artifact_paths

        options = RenderOptions(color=bool(use_color), redact=not no_redact, rules=rule_infos(report.rules),
                                fail_on=fail_on, plots=figures, artifact_paths=artifact_paths(
                                    [m for m in bundle.contents.members if str(m.path) not in copies]),
                                path_prefix=path_prefix)
        if not targets:
            # a terminal's width, or $COLUMNS when the report is captured (`COLUMNS=80 … | less`)
            width = _terminal_width() if sys.stdout.isatty() or os.environ.get("COLUMNS") else options.width
            sys.stdout.write(renderers[fmt or "terminal"](report, replace(options, width=width)))
            sys.stdout.flush()
        for target_fmt, path in targets:
            text = renderers[target_fmt](report, replace(options, color=bool(color)))
            with _writing(f"-o {path}"):
                path.write_text(text, encoding="utf-8")
        _exit_on_trouble(report)
        if fail_on is not None:
            worst = report.worst_severity()
            raise typer.Exit(1 if worst is not None and SEVERITY_RANK[worst] >= SEVERITY_RANK[fail_on] else 0)


# The format an output's extension stands for (`-o report.sarif`).
EXTENSIONS = {".json": "json", ".sarif": "sarif", ".html": "html", ".htm": "html", ".md": "markdown",
              ".markdown": "markdown", ".xml": "junit", ".txt": "terminal", ".log": "terminal"}


def _choice(option: str, value: str, choices: list[str], noun: str) -> str:
    """`value` as one of `choices`, in any case; else exit 2 saying which was meant."""
    import difflib

    low = value.lower()
    if low in choices:
        return low
    near = difflib.get_close_matches(low, choices, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise _fail(f"{option}: unknown {noun} {value!r}{hint} (choose one of {', '.join(sorted(choices))})")


def _target(value: str, fmt: str | None, choices: list[str]) -> tuple[str, Path]:
    """An `-o` value as (format, path): `FORMAT=PATH`, else `--format`, else the path's extension."""
    head, sep, rest = value.partition("=")
    if sep and head and "/" not in head and head.lower() in choices:
        return head.lower(), Path(rest)
    if fmt is not None:
        return fmt, Path(value)
    path = Path(value)
    by_ext = EXTENSIONS.get(path.suffix.lower())
    if by_ext is None:
        raise _fail(f"-o {value}: cannot tell the format from the extension {path.suffix or '(none)'!r}; write "
                    f"FORMAT={value} or give --format (one of {', '.join(sorted(choices))})")
    return by_ext, path


def _require_writable(what: str, path: Path, *, directory: bool = False) -> None:
    """Refuse before any work an output that cannot be written, in one line (not after a long run)."""
    if directory:
        if path.exists() and not path.is_dir():
            raise _fail(f"{what}: cannot write: exists and is not a directory")
        probe = path if path.is_dir() else next((p for p in path.parents if p.exists()), Path("."))
    else:
        if path.is_dir():
            raise _fail(f"{what}: cannot write: is a directory")
        if not path.parent.is_dir():
            raise _fail(f"{what}: cannot write: no such directory {path.parent}")
        probe = path if path.exists() else path.parent
    if not os.access(probe, os.W_OK):
        raise _fail(f"{what}: cannot write: permission denied")


def _colour_wanted() -> bool:
    """Colour on a terminal, unless NO_COLOR says otherwise; FORCE_COLOR forces it (no-color.org,
    force-color.org: set and not empty)."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _terminal_width() -> int:
    """The terminal's width ($COLUMNS first), within what a report can be laid out in."""
    import shutil

    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 200))


def _check_rule_options(rule_dirs: list[Path], select: list[str], ignore: list[str]) -> None:
    """Refuse, before any work, a `--rules` path that is not there and a `--select` / `--ignore`
    pattern that names no rule: either would otherwise quietly change what runs."""
    _require_rule_dirs(rule_dirs)
    if not select and not ignore:
        return
    from analyzer.engine.catalogue import load_catalogue, unmatched

    loaded, errors = load_catalogue(rule_dirs)
    for option, patterns in (("--select", select), ("--ignore", ignore)):
        for pattern in unmatched(patterns, loaded):
            if any(e.rule == pattern for e in errors):
                continue  # the rule is there but broken: the report says why and the exit code is 2
            broken = f" ({len(errors)} rule file(s) failed to load, first: {errors[0]})" if errors else ""
            raise _fail(f"{option} {pattern} matches no rule id, id prefix or category{_did_you_mean(pattern, loaded)}"
                        f"{broken}")


def _did_you_mean(pattern: str, loaded: list[Rule]) -> str:
    import difflib

    names = sorted({*(r.id for r in loaded), *(r.category for r in loaded)})
    near = difflib.get_close_matches(pattern, names, n=1) or difflib.get_close_matches(pattern.upper(), names, n=1)
    return f" (did you mean {near[0]}?)" if near else ""


def _require_executable(exe: Path | None) -> None:
    if exe is not None and not exe.is_file():
        raise _fail(f"--core-executable {exe}: not a file")


def _require_rule_dirs(rule_dirs: list[Path], option: str = "--rules ") -> None:
    for d in rule_dirs:
        if not d.exists():
            raise _fail(f"{option}{d}: no such file or directory")


def _exit_on_trouble(report: Report) -> None:
    """Exit 2 with one line on stderr when the run itself went wrong (`_run_trouble`)."""
    trouble = _run_trouble(report)
    if trouble:
        raise _fail(trouble)


def _run_trouble(report: Report) -> str:
    """One line for stderr when the run itself went wrong (exit 2): rule errors, nothing analysed."""
    from analyzer.renderers import inconclusive

    parts = []
    if report.rule_errors:
        n = len(report.rule_errors)
        parts.append(f"{n} rule error{'s' if n != 1 else ''} (the other rules ran; see the report), first: "
                     + " ".join(report.rule_errors[0].split()))
    reasons = report.inconclusive_reasons()
    if reasons:
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        parts.append(f"inconclusive, {inconclusive(report).removeprefix('INCONCLUSIVE: ')}: {reasons[0]}{more}")
    return "; ".join(parts)


def export_command(
    path: Annotated[Path, typer.Argument(help="Bundle directory, archive or file.")],
    directory: Annotated[Path, typer.Argument(help="Directory to write the files into (created if needed).")],
    to: Annotated[str, typer.Option("--to", help="File format: parquet, csv or ndjson.")] = "parquet",
    log_format: Annotated[list[str] | None, typer.Option(
        "--log-format", help="A %-style logging format used by the worker (repeatable).")] = None,
    tz: Annotated[str | None, typer.Option(
        "--tz", help="Zone the logs were written in (e.g. Europe/Berlin); timestamps become UTC.")] = None,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra rule directory (repeatable).")]
    = None,
    no_redact: Annotated[bool, typer.Option(
        "--no-redact", help="Keep passwords and tokens found in the inputs (redacted by default).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """Write every frame of the bundle (events, tasks, threads, ..., stuck, the diagnostic ones, findings,
    coverage) to DIR, one file each, secrets redacted unless --no-redact."""
    from analyzer.api import open_bundle
    from analyzer.export import FORMATS as TO
    from analyzer.export import frames_to_write, write_frames
    from analyzer.renderers.terminal import run_notes

    if to not in TO:
        raise _fail(f"--to takes one of {', '.join(TO)}, not {to!r}")
    _require_paths([path])
    _require_rule_dirs(rules or [])
    _require_zone(tz)
    if directory.exists() and not directory.is_dir():
        raise _fail(f"{directory}: not a directory")
    with _guarded(debug):
        bundle = open_bundle(path, rules=rules, tz=tz, log_formats=log_format or ())
        report = bundle.report()
        data = frames_to_write(bundle, redact=not no_redact)
    with _writing(str(directory)):
        written = write_frames(data, directory, to)
    for p in written:
        typer.echo(str(p))
    for line, _ in run_notes(report):  # what could not be read, as `analyze` says it
        typer.echo(line, err=True)
    _exit_on_trouble(report)


app.command("export", cls=PlainCommand)(export_command)


REPORT_EXTENSIONS = {"json": "json", "markdown": "md", "html": "html", "terminal": "txt", "sarif": "sarif",
                     "junit": "xml", "github": "github.txt"}  # a bundle's report under --out-dir


@app.command("analyze-many", cls=PlainCommand)
def analyze_many_command(
    sources: Annotated[list[str], typer.Argument(
        metavar="SOURCE...", help="Directories of bundles, manifests (one bundle path or URL a line), quoted globs, "
        "URLs (s3://, http(s)://, file://) or bundles.", show_default=False)],
    out_dir: Annotated[Path | None, typer.Option(
        "--out-dir", metavar="DIR", help="Write each bundle's report here, as BUNDLE.EXT (created if needed).")]
    = None,
    format: Annotated[list[str] | None, typer.Option(
        "--format", "-f", metavar="FORMAT", show_default="json",
        help=f"Format of each bundle's report under --out-dir (repeatable): {', '.join(FORMATS)}.")] = None,
    summary: Annotated[str, typer.Option(
        "--summary", metavar="FORMAT", help="Format of the summary on stdout: terminal, json, markdown, html.")]
    = "terminal",
    output: Annotated[list[str] | None, typer.Option(
        "--output", "-o", metavar="[FORMAT=]PATH",
        help="Also write the summary here (repeatable); format: FORMAT= or the extension (.json .md .html .txt).")]
    = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", metavar="N", show_default="the cores", help="Bundles analysed at once (processes).")] = None,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", metavar="ADDRESS", help="Run on a Dask scheduler at ADDRESS (tcp://host:8786), or `local` for a "
        "LocalCluster of --jobs workers.")] = None,
    log_format: Annotated[list[str] | None, typer.Option(
        "--log-format", metavar="FORMAT", help="A %-style logging format used by the workers (repeatable).")] = None,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", metavar="DIR", help="Extra rule directory (repeatable).")] = None,
    select: Annotated[list[str] | None, typer.Option(
        "--select", metavar="RULE", help="Only these rule ids, id prefixes or categories (repeatable).")] = None,
    ignore: Annotated[list[str] | None, typer.Option(
        "--ignore", metavar="RULE", help="Skip these rule ids, id prefixes or categories (repeatable).")] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", metavar="SEVERITY", help=f"Exit 1 when a finding of any bundle is at or above: "
        f"{', '.join(FAIL_ON)}.")] = None,
    tz: Annotated[str | None, typer.Option(
        "--tz", metavar="ZONE", show_default=False, help="Zone the logs were written in (as analyze --tz).")] = None,
    no_redact: Annotated[bool, typer.Option(
        "--no-redact", help="Show passwords and tokens found in the inputs (redacted by default).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """Analyse many bundles: one report each (--out-dir) and a summary of verdicts, root causes and the
    finding signatures across them. Exit codes as analyze, over all bundles."""
    from analyzer.fleet.cluster import ClusterError
    from analyzer.fleet.many import outcomes
    from analyzer.fleet.one import Outcome, Settings
    from analyzer.fleet.remote import RemoteError
    from analyzer.fleet.sources import SourceError
    from analyzer.fleet.summary import bundles_frame
    from analyzer.fleet.summary_render import FORMATS as SUMMARY_FORMATS
    from analyzer.fleet.summary_render import registry as summary_registry

    if format and out_dir is None:
        raise _fail("--format: each bundle's report goes to --out-dir DIR; give it (the summary's format is --summary)")
    fmts = [_choice("--format", f, list(FORMATS), "format") for f in format or ["json"]]
    shown = _choice("--summary", summary, list(SUMMARY_FORMATS), "format")
    targets = [_target(o, None, list(SUMMARY_FORMATS)) for o in output or []]
    for fmt_, path_ in targets:
        if fmt_ not in SUMMARY_FORMATS:  # by its extension (.sarif, .xml): not a summary format
            raise _fail(f"-o {path_}: the summary is written as {', '.join(SUMMARY_FORMATS)}, not {fmt_}")
    if fail_on is not None:
        fail_on = _choice("--fail-on", fail_on, list(SEVERITIES), "severity")
    if jobs is not None and jobs < 1:
        raise _fail("--jobs: must be at least 1")
    for _, path in targets:
        _require_writable(f"-o {path}", path)
    if out_dir is not None:
        _require_writable(f"--out-dir {out_dir}", out_dir, directory=True)
    _check_rule_options(rules or [], select or [], ignore or [])
    _require_zone(tz)
    settings = Settings(formats=tuple(dict.fromkeys(fmts)) if out_dir is not None else (),
                        rules=tuple(str(r) for r in rules or ()), select=tuple(select or ()),
                        ignore=tuple(ignore or ()), log_formats=tuple(log_format or ()), tz=tz,
                        redact=not no_redact, fail_on=fail_on)
    def write_reports(o: Outcome) -> Outcome:
        """A bundle's reports written as soon as they come; the outcome kept without them."""
        if out_dir is None:
            return o
        with _writing(f"--out-dir {out_dir}"):
            out_dir.mkdir(parents=True, exist_ok=True)
            for fmt, text in o.reports:
                (out_dir / f"{o.name}.{REPORT_EXTENSIONS[fmt]}").write_text(text, encoding="utf-8")
        return replace(o, reports=())

    with _guarded(debug):
        try:
            done = outcomes(sources, settings, jobs=jobs, cluster=cluster, on_outcome=write_reports,
                            progress=_many_progress() if sys.stderr.isatty() else None)
        except (SourceError, RemoteError, ClusterError) as exc:
            raise _fail(str(exc)) from None
    frame = bundles_frame(done)
    render = summary_registry()
    sys.stdout.write(render[shown](frame))
    sys.stdout.flush()
    for fmt, path in targets:
        with _writing(f"-o {path}"):
            path.write_text(render[fmt](frame), encoding="utf-8")
    bad = [o for o in done if o.trouble]
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        raise _fail(f"{len(bad)} of {len(done)} bundles could not be fully analysed, first: {bad[0].name}: "
                    f"{bad[0].trouble}{more}")
    if fail_on is not None:
        worst = [SEVERITY_RANK[o.worst] for o in done if o.worst is not None]
        raise typer.Exit(1 if worst and max(worst) >= SEVERITY_RANK[fail_on] else 0)


@app.command("diff", cls=PlainCommand)
def diff_command(
    bundle: Annotated[str, typer.Argument(metavar="BUNDLE", help="The failed bundle (path or URL).",
                                          show_default=False)],
    baseline: Annotated[str, typer.Option(
        "--baseline", metavar="BUNDLE", help="A healthy bundle of the same deployment (path or URL).",
        show_default=False)],
    format: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT", help="terminal, json or markdown.")] = "terminal",
    log_format: Annotated[list[str] | None, typer.Option(
        "--log-format", metavar="FORMAT", help="A %-style logging format used by the workers (repeatable).")] = None,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", metavar="DIR", help="Extra rule directory (repeatable).")] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", metavar="SEVERITY", help=f"Exit 1 when a new finding is at or above: {', '.join(FAIL_ON)}.")]
    = None,
    no_redact: Annotated[bool, typer.Option(
        "--no-redact", help="Show passwords and tokens found in the inputs (redacted by default).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """What is new in BUNDLE beside a healthy --baseline: findings, log message templates, and the
    rates per hour of templates that moved."""
    from analyzer.fleet.diff import diff_bundles
    from analyzer.fleet.diff_render import FORMATS as DIFF_FORMATS
    from analyzer.fleet.diff_render import registry as diff_registry
    from analyzer.fleet.one import Settings
    from analyzer.fleet.remote import RemoteError
    from analyzer.fleet.sources import is_url

    fmt = _choice("--format", format, list(DIFF_FORMATS), "format")
    if fail_on is not None:
        fail_on = _choice("--fail-on", fail_on, list(SEVERITIES), "severity")
    _require_paths([Path(p) for p in (bundle, baseline) if not is_url(p)])
    _require_rule_dirs(rules or [])
    settings = Settings(rules=tuple(str(r) for r in rules or ()), log_formats=tuple(log_format or ()),
                        redact=not no_redact)
    with _guarded(debug):
        try:
            result = diff_bundles(bundle, baseline, settings)
        except RemoteError as exc:
            raise _fail(str(exc)) from None
    sys.stdout.write(diff_registry()[fmt](result))
    sys.stdout.flush()
    if fail_on is not None:
        worst = [SEVERITY_RANK[str(f["severity"])] for f in result.new_findings]
        raise typer.Exit(1 if worst and max(worst) >= SEVERITY_RANK[fail_on] else 0)


def _many_progress() -> Callable[[int, int, int, int, str], None]:
    """A progress line on stderr (a terminal): bundles and bytes done."""
    from analyzer.printable import printable

    def step(done: int, total: int, done_bytes: int, total_bytes: int, name: str) -> None:
        mb = 1024 * 1024
        sys.stderr.write(f"\r\x1b[K{done}/{total} bundles, {done_bytes / mb:.1f}/{total_bytes / mb:.1f} MB "
                         f"(last: {printable(name)[:40]})" + ("\n" if done == total else ""))
        sys.stderr.flush()

    return step


def _parse_with_progress(bundle: Bundle) -> None:
    """A transient progress bar on stderr, by bytes read, while a bundle is read (stderr a terminal)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from analyzer.printable import printable

    with Progress(TextColumn("reading {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("bundle", total=sum(i.size for i in bundle.inputs))

        def step(done: int, total: int, name: str) -> None:  # a name, not markup
            progress.update(task, completed=done, total=total, description=escape(printable(name)))

        bundle.parse(step)


def _require_zone(tz: str | None) -> None:
    """Refuse a zone before any work (exit 2, one line)."""
    if tz is None:
        return
    from analyzer.export import check_zone

    try:
        check_zone(tz)
    except ValueError as exc:
        raise _fail(f"--tz: {exc}") from None


def _version(value: bool) -> None:
    if value:
        from analyzer import __version__

        typer.echo(f"celery-postmortem {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """celery-postmortem"""


def main() -> None:
    app()


rules_app = typer.Typer(cls=PlainGroup, no_args_is_help=True, context_settings=HELP,
                        help="List, document and test rules.")
app.add_typer(rules_app, name="rules")


@rules_app.command("list", cls=PlainCommand)
def rules_list(
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra rule directory.")] = None,
) -> None:
    """Table of rules: id, category, severity, status, title."""
    from analyzer.engine.catalogue import load_catalogue, overrides

    _require_rule_dirs(rules or [])
    loaded, errors = load_catalogue(rules or ())
    for r in loaded:
        _echo(f"{r.id:10} {r.category:28} {r.severity:9} {r.status:12} {r.title}")
    for r, shipped in overrides(loaded):
        _echo(f"note: {r.id} from {r.path} replaces the built-in rule {r.id} ({shipped})", err=True)
    for e in errors:
        _echo(str(e), err=True, lines=True)
    if errors:
        raise typer.Exit(2)


@rules_app.command("show", cls=PlainCommand)
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="A rule id, e.g. CP-B001.")],
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra rule directory.")] = None,
) -> None:
    """A rule's documentation, rendered from its file (like `ruff rule`)."""
    from analyzer.engine.catalogue import load_catalogue
    from analyzer.engine.docs import rule_markdown

    _require_rule_dirs(rules or [])
    loaded, _ = load_catalogue(rules or ())
    for r in loaded:
        if r.id == rule_id:
            _echo(rule_markdown(r), lines=True)
            return
    raise _fail(f"no rule {rule_id!r}; see `celery-postmortem rules list`")


@rules_app.command("test", cls=PlainCommand)
def rules_test(
    dirs: Annotated[list[Path] | None, typer.Argument(
        metavar="DIR...", help="Rule directories (default: the catalogue).")] = None,
) -> None:
    """Run rules' examples through the real parsers (like `semgrep --test`); exit 1 on any failure."""
    from analyzer.api import parse_example
    from analyzer.engine.catalogue import default_rule_dir
    from analyzer.engine.evaluate import check_examples
    from analyzer.engine.rule import load_rules

    _require_rule_dirs(dirs or [], option="")
    loaded, errors = load_rules(list(dirs) if dirs else [default_rule_dir()])
    failed = len(errors)
    for e in errors:
        _echo(f"error {e}", lines=True)
    for r in loaded:
        for res in check_examples(r, parse_example, loaded):
            where = f"{r.path}:{res.example.line}" if r.path else r.id
            if TEMPLATE_PLACEHOLDER in res.example.text:
                # the template's lines would pass as a no_match and prove nothing
                failed += 1
                _echo(f"FAIL  {where}: {r.id} example {res.index + 1} {res.example.expect}: still the template's "
                      f"placeholder; fill it in with a real log line the rule must "
                      f"{'not ' if res.example.expect == 'no_match' else ''}match", lines=True)
                continue
            if res.ok:
                note = f" (xfail: {res.example.xfail})" if res.example.xfail else ""
                _echo(f"ok    {r.id} example {res.index + 1} {res.example.expect}{note}")
            else:
                failed += 1
                _echo(f"FAIL  {where}: {r.id} example {res.index + 1} {res.example.expect}: {res.reason}", lines=True)
    typer.echo(f"{len(loaded)} rule{'s' if len(loaded) != 1 else ''}, {failed} failure{'s' if failed != 1 else ''}")
    raise typer.Exit(1 if failed else 0)


TEMPLATE_PLACEHOLDER = "TODO: paste a real log line"  # an example still holding it fails `rules test`
RULE_TEMPLATE = '''id = "{rid}"
category = "task.exception"
severity = "warning"
confidence = 0.8
title = "TODO: one line saying what is wrong"
what = "TODO: what the rule finds."
why = "TODO: why it matters."
on = "events"
when = 'message ~ "TODO: a pattern from a real log line"'
group_by = ["host"]
message = "{{host}}: {{count}} TODO since {{first_seen}}"
explains = []
remediation = ["TODO: what to change, naming the setting or command."]
references = []
status = "experimental"

[[example]]
match = """
TODO: paste a real log line the rule must match
"""

[[example]]
no_match = """
TODO: paste a real log line the rule must not match
"""
'''


@rules_app.command("new", cls=PlainCommand)
def rules_new(
    rule_id: Annotated[str, typer.Argument(help="Id of the new rule, e.g. CP-U001.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to write it.")] = Path("."),
    replace: Annotated[bool, typer.Option(
        "--replace", help="Allow a shipped rule's id: the new rule replaces that rule wherever it is loaded.")]
    = False,
) -> None:
    """Write a rule template that fails its own test until it is filled in."""
    from analyzer.engine.catalogue import shipped_rule_files
    from analyzer.engine.rule import ID_RE

    if not ID_RE.match(rule_id):
        raise _fail(f"rule id {rule_id!r} must start with a letter and hold only letters, digits, '-', '_', '.'")
    shipped = shipped_rule_files().get(rule_id)
    if shipped is not None and not replace:
        # a template loaded with --rules would silently stand in for the shipped rule
        raise _fail(f"{rule_id} is a shipped rule ({shipped.name}); pick another id, or pass --replace to "
                    "write a rule that replaces it")
    path = directory / f"{rule_id}.toml"
    if path.exists():
        raise _fail(f"{path} exists")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(RULE_TEMPLATE.format(rid=rule_id))
    except OSError as exc:
        raise _fail(f"{path}: cannot write: {exc.strerror or exc}") from None
    typer.echo(f"wrote {path}; fill it in, then run `celery-postmortem rules test {directory}`")
