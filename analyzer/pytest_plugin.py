"""pytest plugin: a failing test gets the root cause of what its Celery worker logged meanwhile.

Opt-in, so it never surprises a project that merely has celery-postmortem installed (its `pytest11`
entry point loads this module everywhere): `pytest --celery-postmortem`, or `celery_postmortem =
true` in the ini file. Until then it registers nothing but the option, imports nothing heavy and
touches no logger.

While a test runs (setup, call, teardown), a handler on the `celery` and `kombu` loggers writes
every record in Celery's default worker log layout (`worker_log_format`; task loggers in
`worker_task_log_format`), as a worker started in the test process logs it (`celery.contrib.testing`
`start_worker`, a pytest-celery setup with an in-process worker). Those loggers are lowered to INFO
for the test, since the testing worker logs at ERROR by default and a diagnosis needs the task
received and started lines. When a phase fails, the text is analysed as a worker log
(`Bundle.from_text`) and the verdict with the first root cause is added to the test's report as a
section `celery-postmortem` and to `user_properties` as `celery_postmortem.*` (JUnit XML
`<property>`s, as `record_property` writes them).

Workers in other processes or containers are not seen: their logs are files, for `analyze`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from analyzer.report import Report

OPTION = "--celery-postmortem"
INI = "celery_postmortem"
LOGGERS = ("celery", "kombu")
SECTION = "celery-postmortem"
PROPERTY = "celery_postmortem"
MAX_LINES = 200_000  # per test; later records are counted, not kept
# Celery's defaults (celery.app.defaults), so the plugin need not import Celery to load
PROCESS_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
TASK_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("celery-postmortem")
    group.addoption(OPTION, action="store_true", default=False, dest=INI,
                    help="On a failing test, analyse what the in-process Celery worker logged during it and "
                         "report the root cause (section and JUnit properties).")
    parser.addini(INI, type="bool", default=False, help="Enable celery-postmortem's root cause for failing tests.")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption(INI) or config.getini(INI):
        config.pluginmanager.register(Postmortem(), "celery-postmortem-capture")


def _task_logger(name: str) -> bool:
    """Whether records of logger `name` come from a task logger (`get_task_logger`: parent `celery.task`)."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if logger.name == "celery.task":
            return True
        logger = logger.parent
    return False


class CeleryLayoutHandler(logging.Handler):
    """Keeps each record as a line of a worker log in Celery's default layout."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[str] = []
        self.dropped = 0
        self.process = logging.Formatter(PROCESS_FORMAT)
        try:  # fills task_name / task_id from the task being executed, as the worker's own formatter does
            from celery.utils.log import TaskFormatter

            self.task: logging.Formatter = TaskFormatter(TASK_FORMAT)
        except ImportError:
            self.task = self.process

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) >= MAX_LINES:
            self.dropped += 1
            return
        try:
            formatter = self.task if _task_logger(record.name) else self.process
            self.lines.append(formatter.format(record))
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


@dataclass
class _Capture:
    handler: CeleryLayoutHandler = field(default_factory=CeleryLayoutHandler)
    levels: dict[str, int] = field(default_factory=dict)
    reported: bool = False

    disabled: list[logging.Logger] = field(default_factory=list)
    direct: list[logging.Logger] = field(default_factory=list)

    def start(self) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self.handler)
        # a worker started earlier in the session may have configured logging: `dictConfig` disables
        # the loggers it does not name, and a logger that does not propagate never reaches ours
        for name, known in list(logging.root.manager.loggerDict.items()):
            if not isinstance(known, logging.Logger) or not name.startswith(tuple(f"{n}." for n in LOGGERS)):
                continue
            logger = known
            if logger.disabled:
                logger.disabled = False
                self.disabled.append(logger)
            if not logger.propagate:
                logger.addHandler(self.handler)
                self.direct.append(logger)

    def stop(self) -> None:
        for name, level in self.levels.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.setLevel(level)
        for logger in self.disabled:
            logger.disabled = True
        for logger in self.direct:
            logger.removeHandler(self.handler)
        self.levels.clear()
        self.disabled.clear()
        self.direct.clear()


CAPTURE = pytest.StashKey[_Capture]()


@dataclass(frozen=True)
class Diagnosis:
    """What a failing test is told: the verdict line, the report section, the JUnit properties."""

    verdict: str
    section: str
    properties: list[tuple[str, str]]


def diagnose_log(text: str, *, dropped: int = 0) -> Diagnosis:
    """The worker log `text` (Celery's default layout) analysed as `analyze` would a `worker.log`."""
    from analyzer.api import Bundle

    report = Bundle.from_text(text, name="worker.log").report()
    return _diagnosis(report, text.count("\n"), dropped)


def _diagnosis(report: Report, lines: int, dropped: int) -> Diagnosis:
    from analyzer.renderers import verdict

    line = verdict(report)
    out = [line]
    props = [(f"{PROPERTY}.verdict", report.verdict)]
    if report.root_causes:
        f = report.finding(report.root_causes[0])
        out.append(f"  {f.summary}")
        out += [f"  what to do: {r}" for r in f.remediation[:2]]
        out += [f"  worker.log:{e.line}: {e.text.splitlines()[0] if e.text else ''}" for e in f.evidence[:3]]
        props += [(f"{PROPERTY}.root_cause", f"{f.title} [{f.category}]"), (f"{PROPERTY}.rule", f.rule),
                  (f"{PROPERTY}.summary", f.summary)]
    kept = f"{lines} worker log line{'s' if lines != 1 else ''} captured during the test"
    out.append(f"({kept}{f', {dropped} more dropped' if dropped else ''})")
    return Diagnosis(line, "\n".join(out) + "\n", props)


class Postmortem:
    """The per-test capture and the report hook, registered only when the plugin is enabled."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        capture = _Capture()
        item.stash[CAPTURE] = capture
        capture.start()
        return (yield)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        try:
            return (yield)
        finally:
            capture = item.stash.get(CAPTURE, None)
            if capture is not None:
                capture.stop()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: pytest.TestReport = yield
        capture = item.stash.get(CAPTURE, None)
        if capture is None or capture.reported or not report.failed or not capture.handler.lines:
            return report
        capture.reported = True
        try:
            found = diagnose_log(capture.handler.text(), dropped=capture.handler.dropped)
        except Exception as exc:  # the test's own failure matters more than the analysis'
            report.sections.append((SECTION, f"analysis failed: {type(exc).__name__}: {exc}\n"))
            return report
        report.sections.append((SECTION, found.section))
        item.user_properties.extend(found.properties)  # the teardown report carries them into JUnit XML
        if report.user_properties is not item.user_properties:
            report.user_properties.extend(found.properties)
        return report
