"""Broker host unreachable (EHOSTUNREACH, errno 113): no route to the broker's address.

This machine answers every IPv4 address through a proxy, so an unroutable address still connects.
The scenario installs a real `unreachable` route for TEST-NET-2 (RFC 5737) for the length of the
run, points the broker URL into it, and always removes the route again. The route must not exist
beforehand (adding it then fails and nothing is removed that this run did not add).
"""

from __future__ import annotations

from harness import Ctx, Scenario

from scenarios.broker import app, redis_cli_attempt

NET = "198.51.100.0/24"  # TEST-NET-2: documentation-only, never a real host
HOST = "198.51.100.7"


def _unreachable(ctx: Ctx, url: str, redis_port: int | None = None) -> None:
    ctx.run(["ip", "route", "add", "unreachable", NET])
    try:
        route = ctx.run(["ip", "route", "get", HOST], check=False)
        ctx.save("ip-route-get.txt", route.stdout + route.stderr)
        ctx.note(f"`ip-route-get.txt` is the output of `ip route get {HOST}` (exit status {route.returncode}).")
        app(ctx, url)
        w = ctx.worker()
        ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)", timeout=60)
        ctx.stop(w)
        if redis_port is not None:
            redis_cli_attempt(ctx, "-h", HOST, "-p", str(redis_port))
    finally:
        ctx.run(["ip", "route", "del", "unreachable", NET])
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note(f"The generator ran `ip route add unreachable {NET}` before starting the worker and "
             f"`ip route del unreachable {NET}` after it (in a `finally`), so every connect() to {HOST} failed "
             f"at once with EHOSTUNREACH (`[Errno 113] No route to host`); this machine otherwise answers every "
             f"IPv4 address through a proxy.")


def broker_unreachable(ctx: Ctx) -> None:
    _unreachable(ctx, f"redis://{HOST}:6379/0", redis_port=6379)


def broker_unreachable_amqp(ctx: Ctx) -> None:
    _unreachable(ctx, f"amqp://guest:guest@{HOST}:5672//")


SCENARIOS = [
    Scenario("broker-unreachable", "No route to the Redis broker's host (an `unreachable` route for its network): "
             "the worker retries (`Cannot connect to redis://...: Error 113 connecting to ... No route to host..`) "
             "until stopped.", broker_unreachable),
    Scenario("broker-unreachable-amqp", "No route to the AMQP broker's host (an `unreachable` route for its "
             "network): the worker retries (`Cannot connect to amqp://...: [Errno 113] No route to host.`) until "
             "stopped.", broker_unreachable_amqp),
]
