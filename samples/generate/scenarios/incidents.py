"""Incidents as intervals: a broker blip that recovers, an outage still on when the logs end, and a
standing low-rate task error beside a real incident (issue 15, items 2 and 3).

Each breaks only a private redis-server started for it (`Ctx.redis`), stopped and restarted by pid.
"""

from __future__ import annotations

import os
import signal
import time

from harness import PY, Ctx, Scenario

from scenarios.broker import redis_proc

APP = """
    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker={broker!r})
    app.conf.broker_connection_retry_on_startup = True
    app.conf.task_ignore_result = True
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y

    @app.task
    def parse(row):
        # every other row is malformed: a steady application error, all day long
        if row % 2 == 0:
            raise ValueError(f"malformed row {{row}}: expected 3 fields")
        return row
"""

SEND = """
    from proj import add
    for i in range({n}):
        add.delay(i, {k})
"""

# A producer sending `parse` every few seconds for as long as it runs; a send that fails while the
# broker is down is skipped, as a web app's request would fail.
PRODUCER = """
    import sys, time
    from proj import parse

    row = 0
    while True:
        try:
            parse.apply_async((row,), retry=False)
        except Exception as exc:
            print(f"send failed: {type(exc).__name__}", flush=True)
        row += 1
        time.sleep(float(sys.argv[1]))
"""


def _kill_redis(ctx: Ctx, port: int) -> None:
    redis = redis_proc(ctx, port)
    ctx.commands.append(f"kill -KILL {redis.pid}  # the redis-server broker")
    os.kill(redis.pid, signal.SIGKILL)
    redis.wait(timeout=10)


def blip_recovered(ctx: Ctx) -> None:
    port = ctx.redis()
    # failover to a name that does not resolve: kombu alternates the two while the broker is down
    broker = f"redis://127.0.0.1:{port}/0;redis://cpm-blip-standby.invalid:{port}/0"
    ctx.write("proj.py", APP.format(broker=broker))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(SEND.format(n=3, k=100))
    ctx.wait_for("worker.log", r"succeeded in", count=3)
    _kill_redis(ctx, port)
    ctx.wait_for("worker.log", r"Connection to broker lost")
    ctx.wait_for("worker.log", r"Cannot connect to redis://\S*cpm-blip-standby", timeout=60)
    ctx.wait_for("worker.log", r"Cannot connect to redis://\S*127\.0\.0\.1", count=2, timeout=60)
    ctx.redis(port=port)  # the same port again, empty
    ctx.wait_for("worker.log", r"Connected to redis://", count=2, timeout=60)
    ctx.python(SEND.format(n=3, k=200))
    ctx.wait_for("worker.log", r"succeeded in", count=6)
    time.sleep(2)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note("The broker URL lists a failover host whose name does not resolve "
             "(`cpm-blip-standby.invalid`), so the reconnect attempts alternate between a refused "
             "connection and a DNS failure until the redis-server is back on its port.")


def outage_still_failing(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", APP.format(broker=f"redis://127.0.0.1:{port}/0"))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(SEND.format(n=3, k=100))
    ctx.wait_for("worker.log", r"succeeded in", count=3)
    _kill_redis(ctx, port)
    ctx.wait_for("worker.log", r"Connection to broker lost")
    ctx.wait_for("worker.log", r"Cannot connect to .*\n.*\(4/100\)", timeout=60)
    ctx.commands.append("cp worker.log ...  # the logs as collected while the broker is still down")
    ctx.keep("worker.log")
    ctx.stop(w, signal.SIGKILL)
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note("The redis-server is never restarted; `worker.log` is copied while the worker is still "
             "retrying, as an operator collecting logs during the outage would.")


def standing_error_beside_blip(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", APP.format(broker=f"redis://127.0.0.1:{port}/0"))
    ctx.write("producer.py", PRODUCER)
    w = ctx.worker()
    ctx.wait_ready()
    producer = ctx.spawn([PY, "producer.py", "5"], log="producer.log")
    ctx.wait_for("worker.log", r"raised unexpected: ValueError", count=12, timeout=120)
    _kill_redis(ctx, port)
    ctx.wait_for("worker.log", r"Connection to broker lost")
    ctx.wait_for("worker.log", r"Cannot connect to .*\n.*\(2/100\)", timeout=60)
    ctx.redis(port=port)
    ctx.wait_for("worker.log", r"Connected to redis://", count=2, timeout=60)
    ctx.wait_for("worker.log", r"raised unexpected: ValueError", count=24, timeout=150)
    ctx.stop(producer)
    time.sleep(1)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.keep("producer.log")
    ctx.note("`producer.py` sends `proj.parse` every 5 s; every other row is malformed and fails with "
             "ValueError: a steady background error all through the run. Midway the redis-server broker "
             "is SIGKILLed and restarted on its port: the real incident.")


SCENARIOS = [
    Scenario("broker-blip-recovered", "A Redis broker blip that recovers: the redis-server is SIGKILLed, the "
             "worker loses its connection, its retries are refused (and fail DNS on the failover host), the "
             "redis-server is back on its port and the worker reconnects; three tasks succeed before and "
             "three after.", blip_recovered, needs=("redis",)),
    Scenario("broker-outage-still-failing", "A Redis broker outage still on when the logs are collected: the "
             "redis-server is SIGKILLed and never restarted; the worker's retries are refused until its log "
             "ends.", outage_still_failing, needs=("redis",)),
    Scenario("standing-error-beside-blip", "A standing low-rate application error beside a real incident: "
             "`proj.parse` fails with ValueError every 10 s all through the run, and midway the Redis broker "
             "is SIGKILLed and restarted (lost, refused, reconnected).", standing_error_beside_blip,
             needs=("redis",)),
]
