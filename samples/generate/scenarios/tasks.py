"""Task-level problems and log-format variants: unregistered / undecodable messages, unencodable results,
retries that recover, JSON logs, custom `%`-formats and coloured console output."""

from __future__ import annotations

import textwrap
import time

from harness import BIN, PY, Ctx, Scenario

HEAD = """
    import os, time
    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
    app.conf.broker_connection_retry_on_startup = True
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y

    @app.task
    def divide(x, y):
        return x / y
"""


def _app(ctx: Ctx, port: int, body: str = "", conf: str = "") -> None:
    ctx.write("proj.py", textwrap.dedent(HEAD).format(port=port) + textwrap.dedent(conf) + textwrap.dedent(body))


# --- 8. unregistered task -------------------------------------------------------------------------
def unregistered_task(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port)
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import app, add
        app.send_task("proj.not_registered", args=(1, 2))
        print(add.delay(1, 1).get(timeout=20))
    """)
    ctx.wait_for("worker.log", r"Received unregistered task of type 'proj.not_registered'")
    ctx.wait_for("worker.log", r"succeeded in")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 9. serialization errors ------------------------------------------------------------------------
def serialization_error(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        class Invoice:
            def __init__(self, number):
                self.number = number

        @app.task
        def tags(doc):
            log.info("collecting tags of %s", doc)
            return {"urgent", "billing"}

        @app.task
        def invoice(number):
            log.info("building invoice %s", number)
            return Invoice(number)
    """)
    ctx.note("`proj.tags` returns a `set`, `proj.invoice` a custom object; the JSON result serializer cannot "
             "encode either. A client also publishes one `proj.add` message with `serializer='pickle'`, which the "
             "worker (accept_content json only) refuses to decode.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, tags, invoice
        print(add.delay(1, 2).get(timeout=20))
        tags.delay("doc-1").get(timeout=20, propagate=False)
        invoice.delay(7).get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.log", r"proj.invoice\[\S+\] raised unexpected")
    ctx.python("""
        from proj import add
        add.apply_async((3, 4), serializer="pickle")
    """)
    ctx.wait_for("worker.log", r"Can't decode message body|Received invalid task message")
    time.sleep(0.5)
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 10. retries followed by success ----------------------------------------------------------------
def retry_then_success(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        ATTEMPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attempts")

        class UpstreamDown(ConnectionError):
            pass

        @app.task(bind=True)
        def fetch(self, url):
            with open(ATTEMPTS, "a+") as f:
                f.write("x")
                f.seek(0)
                n = len(f.read())
            log.info("attempt %d for %s", n, url)
            if n <= 2:
                raise self.retry(exc=UpstreamDown("upstream down"), countdown=1, max_retries=3)
            return "fetched"
    """)
    ctx.note("`proj.fetch` fails its first two attempts and retries with `self.retry(countdown=1, max_retries=3)`; "
             "the third attempt succeeds. Intermittent trouble that recovered: not a root cause.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, fetch
        print(add.delay(1, 2).get(timeout=20))
        print(fetch.delay("https://upstream.invalid/data").get(timeout=30))
    """)
    ctx.wait_for("worker.log", r"proj.fetch\[\S+\] succeeded in")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 12. JSON log lines -----------------------------------------------------------------------------
JSON_CONF = """
    from celery.signals import after_setup_logger, after_setup_task_logger
    from pythonjsonlogger.json import JsonFormatter

    def _json(logger, **kwargs):
        for h in logger.handlers:
            h.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(processName)s %(name)s %(message)s"))

    after_setup_logger.connect(_json)
    after_setup_task_logger.connect(_json)
"""


def json_log(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, conf=JSON_CONF)
    ctx.note("Worker handlers use `pythonjsonlogger.json.JsonFormatter('%(asctime)s %(levelname)s %(processName)s "
             "%(name)s %(message)s')`, set from the `after_setup_logger` / `after_setup_task_logger` signals; "
             "Celery's `data` extra is merged into each lifecycle record.")
    w = ctx.worker()
    ctx.wait_for("worker.log", r"w1@sample ready\.")
    ctx.python("""
        from proj import add, divide
        print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(3)]])
        divide.delay(1, 0).get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: ZeroDivisionError")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 13. custom %-formats ---------------------------------------------------------------------------
LOG_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"
TASK_LOG_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(task_name)s[%(task_id)s] %(name)s: %(message)s"


def custom_log_format(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, conf=f"""
        app.conf.worker_log_format = {LOG_FORMAT!r}
        app.conf.worker_task_log_format = {TASK_LOG_FORMAT!r}
    """)
    ctx.note(f"`worker_log_format = {LOG_FORMAT!r}`")
    ctx.note(f"`worker_task_log_format = {TASK_LOG_FORMAT!r}`")
    ctx.note("Pass both to the analyzer: `--log-format` with each of the two strings above.")
    w = ctx.worker()
    ctx.wait_for("worker.log", r"w1@sample ready\.")
    ctx.python("""
        from proj import add, divide
        print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(3)]])
        divide.delay(1, 0).get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: ZeroDivisionError")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 14. coloured console output ---------------------------------------------------------------------
PTYRUN = """
    # Run argv[2:] on a pseudo-terminal, copying every byte it writes to argv[1]; forward SIGTERM/SIGINT.
    import os, pty, signal, sys

    out = open(sys.argv[1], "wb")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.argv[2], sys.argv[2:])

    def forward(sig, frame):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        out.write(data)
        out.flush()
    os.waitpid(pid, 0)
"""


def celery_colour(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        @app.task
        def noisy(n):
            print("progress", n)  # redirected stdout: WARNING
            return n
    """)
    ctx.write("ptyrun.py", PTYRUN)
    ctx.note("The worker ran on a pseudo-terminal (a small python `pty.fork()` wrapper) without `-f`, so Celery's "
             "ColorFormatter coloured the console; `worker.console` holds the raw bytes read from the pty master "
             "(ANSI escapes and CRLF line ends included).")
    w = ctx.spawn([PY, "ptyrun.py", "worker.console", str(BIN / "celery"), "-A", "proj", "worker", "-P", "prefork",
                   "-c", "2", "--loglevel=INFO", "-n", "w1@sample"])
    ctx.wait_for("worker.console", r"w1@sample ready\.")
    ctx.python("""
        from proj import add, divide, noisy
        print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(2)]])
        print(noisy.delay(3).get(timeout=20))
        divide.delay(1, 0).get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.console", r"raised unexpected: ZeroDivisionError")
    time.sleep(0.5)
    ctx.stop(w)
    ctx.keep("worker.console")


# --- errors no rule names -------------------------------------------------------------------------
def unclassified_errors(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, body="""
        import json

        @app.task
        def sync_inventory(sku):
            try:
                return json.loads('{"sku": "%s", "count": }' % sku)["count"]
            except ValueError:
                log.exception("inventory sync failed for sku %s", sku)
                return None

        @app.task
        def reconcile_ledger(day):
            expected, booked = 1200, 1187
            if expected != booked:
                log.critical("ledger for %s does not balance: expected %d, booked %d", day, expected, booked)
            return booked
    """)
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, sync_inventory, reconcile_ledger
        print(add.delay(1, 2).get(timeout=20))
        print([sync_inventory.delay(s).get(timeout=20) for s in ("A-100", "B-200", "C-300")])
        print(reconcile_ledger.delay("2026-12-07").get(timeout=20))
    """)
    ctx.wait_for("worker.log", r"reconcile_ledger\[\S+\] succeeded")
    ctx.stop(w)
    ctx.keep("worker.log")


SCENARIOS = [
    Scenario("unregistered-task", "A client sends `proj.not_registered`, which the worker does not know; it "
             "discards the message. A normal task succeeds.", unregistered_task, needs=("redis",)),
    Scenario("serialization-error", "Tasks return a set and a custom object the JSON result serializer cannot "
             "encode (EncodeError); a pickle-serialized message is refused by a JSON-only worker.",
             serialization_error, needs=("redis",)),
    Scenario("retry-then-success", "A flaky task retries twice (countdown=1, max_retries=3) and then succeeds: "
             "intermittent, recovered, not a root cause.", retry_then_success, needs=("redis",)),
    Scenario("json-log", "A worker logging JSON lines via python-json-logger: three tasks succeed, one raises "
             "ZeroDivisionError.", json_log, needs=("redis",)),
    Scenario("custom-log-format", "Custom worker_log_format and worker_task_log_format: three tasks succeed, one "
             "raises ZeroDivisionError.", custom_log_format, needs=("redis",)),
    Scenario("celery-colour", "A worker on a pseudo-terminal without -f: coloured console output with ANSI codes; "
             "tasks succeed, one prints, one raises ZeroDivisionError.", celery_colour, needs=("redis",)),
    Scenario("unclassified-errors", "Tasks log errors that no rule names and succeed: an inventory sync logs a "
             "JSONDecodeError with logger.exception three times, a ledger check logs CRITICAL. Nothing failed as "
             "Celery sees it, yet the log holds ERROR and CRITICAL records.",
             unclassified_errors, needs=("redis",)),
]
