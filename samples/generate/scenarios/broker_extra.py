"""Broker samples for the rule catalogue: a Redis replica answering READONLY, a TLS broker whose
self-signed certificate the worker refuses."""

from __future__ import annotations

import time

from harness import Ctx, Scenario, free_port, wait_port

APP = """
    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="{broker}", backend="{backend}")
    app.conf.broker_connection_retry_on_startup = True
    app.conf.broker_connection_max_retries = {retries}
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y
"""


def redis_readonly(ctx: Ctx) -> None:
    master = ctx.redis()
    replica = ctx.redis("--replicaof", "127.0.0.1", str(master))
    for _ in range(50):  # let the replica finish its first sync (role:slave, link up)
        if "master_link_status:up" in ctx.run(["redis-cli", "-p", str(replica), "INFO", "replication"]).stdout:
            break
        time.sleep(0.2)
    url = f"redis://127.0.0.1:{replica}/0"
    ctx.write("proj.py", APP.format(broker=url, backend=f"redis://127.0.0.1:{replica}/1", retries=3))
    w = ctx.worker()
    ctx.wait_for("worker.log", r"READONLY|ReadOnlyError|read only replica", timeout=60)
    try:
        ctx.wait_for("worker.log", r"Unrecoverable error|Cannot connect to", timeout=20)
    finally:
        ctx.stop(w)
    info = ctx.run(["redis-cli", "-p", str(replica), "INFO"])
    ctx.save("redis-info-replica.txt", info.stdout)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note("`redis-info-replica.txt` is `INFO` of the replica the worker was pointed at (role:slave).")


def broker_tls(ctx: Ctx) -> None:
    ctx.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.crt"])
    port = free_port()
    d = ctx.work / f"redis-{port}"
    d.mkdir()
    ctx.spawn(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(d), "--tls-cert-file", str(ctx.work / "server.crt"), "--tls-key-file",
               str(ctx.work / "server.key"), "--tls-auth-clients", "no"], log=f"redis-{port}.log")
    wait_port(port)
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required"
    ctx.write("proj.py", APP.format(broker=url, backend=f"rediss://127.0.0.1:{port}/1?ssl_cert_reqs=required",
                                    retries=3))
    w = ctx.worker()
    ctx.wait_for("worker.log", r"CERTIFICATE_VERIFY_FAILED", count=3, timeout=60)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note("The server certificate is a fresh self-signed one (CN=localhost); the worker uses the system CA store "
             "with `ssl_cert_reqs=required`, so verification fails.")


SCENARIOS = [
    Scenario("redis-readonly", "The worker's Redis broker is a replica (`--replicaof` a second private redis-server): "
             "writes are answered `READONLY You can't write against a read only replica.`", redis_readonly, ("redis",)),
    Scenario("broker-tls", "A TLS-only Redis broker with a self-signed certificate: the worker (rediss://, "
             "ssl_cert_reqs=required) fails the handshake with CERTIFICATE_VERIFY_FAILED.", broker_tls, ("redis",)),
]
