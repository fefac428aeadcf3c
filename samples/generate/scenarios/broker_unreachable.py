"""Broker host or network unreachable: no route to the broker's address.

This machine answers every IPv4 address through a proxy, so an unroutable address still connects.
A scenario installs a real route for a documentation network (RFC 5737) for the length of the run,
points the broker URL into it, and always removes the route again: `unreachable` on TEST-NET-2
gives EHOSTUNREACH (errno 113), `throw` on TEST-NET-3 (no other table to fall through to) gives
ENETUNREACH (errno 101). The networks differ so that both scenarios can run at once. The route must
not exist beforehand (adding it then fails and nothing is removed that this run did not add).
"""

from __future__ import annotations

from harness import Ctx, Scenario

from scenarios.broker import app, redis_cli_attempt

NET = "198.51.100.0/24"  # TEST-NET-2: documentation-only, never a real host
HOST = "198.51.100.7"
THROW_NET = "203.0.113.0/24"  # TEST-NET-3, for the ENETUNREACH scenario
THROW_HOST = "203.0.113.7"


def _unreachable(ctx: Ctx, url: str, redis_port: int | None = None) -> None:
    _no_route(ctx, "unreachable", NET, HOST, url, redis_port)
    ctx.note(f"The generator ran `ip route add unreachable {NET}` before starting the worker and "
             f"`ip route del unreachable {NET}` after it (in a `finally`), so every connect() to {HOST} failed "
             f"at once with EHOSTUNREACH (`[Errno 113] No route to host`); this machine otherwise answers every "
             f"IPv4 address through a proxy.")


def _no_route(ctx: Ctx, kind: str, net: str, host: str, url: str, redis_port: int | None) -> None:
    """Run a worker against `url` while a `kind` route for `net` holds; the route is always removed."""
    ctx.run(["ip", "route", "add", kind, net])
    try:
        route = ctx.run(["ip", "route", "get", host], check=False)
        ctx.save("ip-route-get.txt", route.stdout + route.stderr)
        ctx.note(f"`ip-route-get.txt` is the output of `ip route get {host}` (exit status {route.returncode}).")
        app(ctx, url)
        w = ctx.worker()
        ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)", timeout=60)
        ctx.stop(w)
        if redis_port is not None:
            redis_cli_attempt(ctx, "-h", host, "-p", str(redis_port))
    finally:
        ctx.run(["ip", "route", "del", kind, net])
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


def _net_unreachable(ctx: Ctx, url: str, redis_port: int | None = None) -> None:
    _no_route(ctx, "throw", THROW_NET, THROW_HOST, url, redis_port)
    ctx.note(f"The generator ran `ip route add throw {THROW_NET}` before starting the worker and "
             f"`ip route del throw {THROW_NET}` after it (in a `finally`). A `throw` route ends the lookup in "
             f"the `main` table and the `default` table looked up after it is empty, so every connect() to "
             f"{THROW_HOST} failed at once with ENETUNREACH (`[Errno 101] Network is unreachable`); this "
             f"machine otherwise answers every IPv4 address through a proxy.")


def broker_unreachable(ctx: Ctx) -> None:
    _unreachable(ctx, f"redis://{HOST}:6379/0", redis_port=6379)


def broker_unreachable_amqp(ctx: Ctx) -> None:
    _unreachable(ctx, f"amqp://guest:guest@{HOST}:5672//")


def broker_net_unreachable(ctx: Ctx) -> None:
    _net_unreachable(ctx, f"redis://{THROW_HOST}:6379/0", redis_port=6379)


def broker_net_unreachable_amqp(ctx: Ctx) -> None:
    _net_unreachable(ctx, f"amqp://guest:guest@{THROW_HOST}:5672//")


SCENARIOS = [
    Scenario("broker-unreachable", "No route to the Redis broker's host (an `unreachable` route for its network): "
             "the worker retries (`Cannot connect to redis://...: Error 113 connecting to ... No route to host..`) "
             "until stopped.", broker_unreachable),
    Scenario("broker-unreachable-amqp", "No route to the AMQP broker's host (an `unreachable` route for its "
             "network): the worker retries (`Cannot connect to amqp://...: [Errno 113] No route to host.`) until "
             "stopped.", broker_unreachable_amqp),
    Scenario("broker-net-unreachable", "No route to the Redis broker's network (a `throw` route for it): the "
             "worker retries (`Cannot connect to redis://...: Error 101 connecting to ... Network is "
             "unreachable..`) until stopped.", broker_net_unreachable),
    Scenario("broker-net-unreachable-amqp", "No route to the AMQP broker's network (a `throw` route for it): "
             "the worker retries (`Cannot connect to amqp://...: [Errno 101] Network is unreachable.`) until "
             "stopped.", broker_net_unreachable_amqp),
]
