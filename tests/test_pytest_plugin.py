"""The pytest plugin (analyzer/pytest_plugin.py) in a real test suite, run with pytester: a Celery
worker (celery.contrib.testing) on a live Redis, a task that fails, and the inner report showing the
root cause in a section and in JUnit properties. Opt-in: without the flag it adds nothing."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

import pytest

from analyzer.pytest_plugin import PROCESS_FORMAT, TASK_FORMAT, diagnose_log
from tests.conftest import require

pytest_plugins = ["pytester"]

# A project's integration tests: a worker in the test process, a task whose downstream service is down.
INNER = textwrap.dedent('''
    import os
    import socket

    import pytest
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    app = Celery("shop", broker="redis://127.0.0.1:6379/14", backend="redis://127.0.0.1:6379/14")
    app.conf.update(task_default_queue=f"cpm-plugin-{os.getpid()}", result_expires=60,
                    broker_connection_retry_on_startup=False)


    @app.task
    def add(x, y):
        return x + y


    @app.task
    def charge(order_id):
        # the payment service is down: nothing listens on its port
        socket.create_connection(("127.0.0.1", 9), timeout=2)


    @pytest.fixture(scope="module")
    def worker():
        app.loader.import_module("celery.contrib.testing.tasks")
        with start_worker(app, pool="solo", perform_ping_check=True, shutdown_timeout=10):
            yield


    def test_add(worker):
        assert add.delay(1, 2).get(timeout=10) == 3


    def test_charge(worker):
        charge.delay(42).get(timeout=10)
''')


def _properties(junit: str) -> dict[str, dict[str, str]]:
    cases = ET.fromstring(junit).iter("testcase")
    return {c.get("name", ""): {p.get("name", ""): p.get("value", "") for p in c.iter("property")} for c in cases}


@pytest.mark.live
def test_failing_test_gets_the_worker_logs_root_cause(pytester: pytest.Pytester) -> None:
    require("redis")
    pytester.makepyfile(test_shop=INNER)
    result = pytester.runpytest_subprocess("--celery-postmortem", "--junitxml=junit.xml", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    section = out.split(" celery-postmortem ", 1)[1]
    assert section.lstrip("-\n").startswith(
        "ROOT CAUSE: Task raised an application error [task.exception]"), out
    assert "test_shop.charge raised ConnectionRefusedError" in section
    assert "raised unexpected: ConnectionRefusedError(111, 'Connection refused')" in section
    props = _properties((pytester.path / "junit.xml").read_text())
    assert props["test_add"] == {}  # a passing test is left alone
    charge = props["test_charge"]
    assert charge["celery_postmortem.verdict"] == "unhealthy"
    assert charge["celery_postmortem.root_cause"] == "Task raised an application error [task.exception]"
    assert charge["celery_postmortem.rule"] == "CP-A001"
    assert "ConnectionRefusedError" in charge["celery_postmortem.summary"]


ALONE = textwrap.dedent('''
    import logging

    def test_fails():
        logging.getLogger("celery.app.trace").error("Task shop.charge[%s] raised unexpected: %r",
                                                    "0b5e7b0c-1f0c-4a59-9a48-5d0e0c6a0f51", KeyError("sku"))
        assert False
''')


def test_without_the_flag_or_ini_option_it_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_alone=ALONE)
    result = pytester.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert " celery-postmortem " not in result.stdout.str()
    assert "celery_postmortem" not in (pytester.path / "junit.xml").read_text()


def test_the_ini_option_enables_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncelery_postmortem = true\n")
    pytester.makepyfile(test_alone=ALONE)
    result = pytester.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert " celery-postmortem " in result.stdout.str()
    assert "celery_postmortem.verdict" in (pytester.path / "junit.xml").read_text()


def test_it_captures_after_logging_was_configured_elsewhere(pytester: pytest.Pytester) -> None:
    """A worker started earlier in the session configures logging: `dictConfig` disables the loggers
    it does not name (here `celery.app.trace`), and one that does not propagate never reaches ours."""
    pytester.makeini("[pytest]\ncelery_postmortem = true\n")
    pytester.makepyfile(test_configured="""
import logging, logging.config

def test_configures():
    logging.getLogger("celery.app.trace")
    logging.getLogger("celery.worker.consumer").propagate = False
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})

def test_fails():
    logging.getLogger("celery.worker.consumer").error("consumer: Cannot connect to redis://localhost:6390//: "
                                                       "Error 111 connecting to localhost:6390. Connection refused..")
    logging.getLogger("celery.app.trace").error("Task shop.charge[%s] raised unexpected: %r",
                                                "0b5e7b0c-1f0c-4a59-9a48-5d0e0c6a0f51", KeyError("sku"))
    assert False
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert " celery-postmortem " in out and "2 worker log lines captured" in out


def test_layout_is_celerys_default() -> None:
    from celery.app.defaults import DEFAULT_PROCESS_LOG_FMT, DEFAULT_TASK_LOG_FMT

    assert (PROCESS_FORMAT, TASK_FORMAT) == (DEFAULT_PROCESS_LOG_FMT, DEFAULT_TASK_LOG_FMT)


def test_nothing_captured_reads_as_no_root_cause() -> None:
    found = diagnose_log("")
    assert not found.verdict.startswith("ROOT CAUSE") and found.properties[0][0] == "celery_postmortem.verdict"
