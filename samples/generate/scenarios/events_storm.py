"""An event storm on RabbitMQ: a worker with task events on (`-E`), a steady stream of small tasks, and
an event monitor (`celery events --dump`) whose output nobody reads, so it stops consuming and its
`celeryev.*` queue grows on the broker.

Runs in a vhost of its own on the shared RabbitMQ (created for the run, deleted afterwards), so the
queue listings hold only this run's queues. Nothing of the shared broker's configuration is changed.
"""

from __future__ import annotations

import contextlib
import subprocess
import time

from harness import BIN, PY, Ctx, Scenario, ScenarioError

from scenarios.broker import rabbit_excerpt, rabbit_mark

VHOST = "cpm-events-storm"

APP = f"""
    from celery import Celery

    app = Celery("proj", broker="amqp://guest:guest@127.0.0.1:5672/{VHOST}")
    app.conf.worker_send_task_events = True  # the worker is also started with -E
    app.conf.task_send_sent_event = True
    app.conf.task_ignore_result = True
    # a deployment that keeps event queues unbounded (no per-message TTL, no idle expiry)
    app.conf.event_queue_ttl = None
    app.conf.event_queue_expires = None

    @app.task
    def tick(i, payload):
        return len(payload) + i
"""

SEND = """
import sys, time
from proj import app, tick

rate, seconds = int(sys.argv[1]), float(sys.argv[2])
payload = "x" * 512
sent, start = 0, time.monotonic()
with app.producer_or_acquire() as producer:
    while time.monotonic() - start < seconds:
        for _ in range(rate // 10):
            tick.apply_async((sent, payload), producer=producer)
            sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
print(f"sent {sent} tasks in {time.monotonic() - start:.1f}s", flush=True)
"""

LIST_QUEUES = ("rabbitmqctl", "list_queues", "-p", VHOST, "name", "messages", "consumers", "memory")


def _snapshot(ctx: Ctx) -> str:
    """What `date -Is; rabbitmqctl list_queues ...` prints: a timestamp line, then the listing."""
    return ctx.run(["date", "-Is"]).stdout + ctx.run(list(LIST_QUEUES)).stdout


def _event_queue_depth(listing: str) -> int:
    """The deepest `celeryev.*` queue in a `list_queues name messages ...` listing."""
    depths = [int(parts[1]) for parts in (line.split("\t") for line in listing.splitlines())
              if len(parts) > 1 and parts[0].startswith("celeryev.") and parts[1].isdigit()]
    return max(depths, default=0)


def events_storm(ctx: Ctx) -> None:
    subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, check=False)  # an aborted run's
    ctx.run(["rabbitmqctl", "add_vhost", VHOST])
    try:
        ctx.run(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"])
        mark = rabbit_mark()
        ctx.write("proj.py", APP)
        ctx.write("send.py", SEND)
        w = ctx.worker("-E", "--loglevel=WARNING")
        ctx.wait_for("worker.log.out", r"\] \S+@\S+ ready\.|task events: ON", timeout=60)
        time.sleep(2)
        # The monitor's stdout is a pipe nobody reads: once the pipe is full, print() blocks and the
        # receiver stops draining its queue (as `celery events --dump | less` left in the background does).
        argv = [str(BIN / "celery"), "-A", "proj", "events", "--dump"]
        ctx.commands.append(" ".join(argv) + "  # stdout into a pipe that is never read")
        monitor = subprocess.Popen(argv, cwd=ctx.work, env=ctx.env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        ctx.procs.append(monitor)
        time.sleep(3)  # the monitor declares its queue and starts consuming
        sender = ctx.spawn([PY, "send.py", "300", "40"], log="send.log")
        time.sleep(12)
        first = _snapshot(ctx)
        time.sleep(10)
        second = _snapshot(ctx)
        with contextlib.suppress(subprocess.TimeoutExpired):
            sender.wait(timeout=60)
        ctx.save("rabbitmqctl-list_queues.txt", first + second)
        if not 1000 < _event_queue_depth(first) < _event_queue_depth(second):
            raise ScenarioError(f"the celeryev queue did not grow:\n{first}\n{second}")
        ctx.stop(monitor, grace=5)
        ctx.stop(w)
        ctx.keep("worker.log")
        ctx.keep("worker.log.out", "worker.stdout")
        ctx.keep("send.log")
        rabbit_excerpt(ctx, mark, rf"granted access to vhost '{VHOST}'")
    finally:
        ctx.run(["rabbitmqctl", "delete_vhost", VHOST], check=False)
    ctx.note(f"The vhost `{VHOST}` was created for the run (guest has all permissions on it) and deleted "
             "afterwards. The worker runs with `-E` (and `worker_send_task_events = True`), the producer with "
             "`task_send_sent_event = True`; `event_queue_ttl` and `event_queue_expires` are `None`, so nothing "
             "bounds an event queue. The worker logs at WARNING (at INFO each task would add two lines).")
    ctx.note("`send.py` sends `proj.tick` (a 512-byte argument) at 300 tasks/s for 40 s. `celery -A proj events "
             "--dump` was started with its stdout on a pipe that is never read: it stops consuming once the pipe "
             "is full, and its `celeryev.<uuid>` queue keeps growing.")
    ctx.note("`rabbitmqctl-list_queues.txt` is two runs of `date -Is; rabbitmqctl list_queues -p "
             f"{VHOST} name messages consumers memory`, 10 s apart, appended to one file.")


SCENARIOS = [
    Scenario("events-storm", "An event storm: a worker with task events on (`-E`) runs a steady stream of small "
             "tasks while the event monitor (`celery events --dump`) stops consuming; its `celeryev.*` queue grows "
             "between two `rabbitmqctl list_queues` snapshots taken 10 s apart.", events_storm,
             needs=("rabbitmq",)),
]
