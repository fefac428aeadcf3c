"""Controls: a healthy worker, and one whose only trouble is an application exception."""

from __future__ import annotations

from harness import Ctx, Scenario

APP = """
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


def healthy(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", APP.format(port=port))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add
        rs = [add.delay(i, i) for i in range(5)]
        print([r.get(timeout=20) for r in rs])
    """)
    ctx.wait_for("worker.log", r"succeeded in", count=5)
    ctx.stop(w)  # SIGTERM to the group: warm shutdown
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


def app_exception(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", APP.format(port=port))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, divide
        ok = add.delay(1, 2).get(timeout=20)
        bad = [divide.delay(i, 0) for i in range(3)]
        for r in bad:
            r.get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: ZeroDivisionError", count=3)
    ctx.stop(w)
    ctx.keep("worker.log")


SCENARIOS = [
    Scenario("healthy", "A healthy worker: startup, five tasks received and succeeded, warm shutdown.",
             healthy, needs=("redis",)),
    Scenario("app-exception", "Only an application error: a task divides by zero three times; the "
             "infrastructure is fine.", app_exception, needs=("redis",)),
]
