"""Column names and dtypes of every public frame.

These are a contract with notebook users and with rules (`when` may only name columns listed
here), so every parser builds its frame through `empty()`/`conform()` rather than by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

TS = pl.Datetime("ms")
STR = pl.String()
INT = pl.Int64()
FLOAT = pl.Float64()
BOOL = pl.Boolean()

EVENTS: Mapping[str, pl.DataType] = {
    "source": STR,  # bundle member the record came from
    "line": INT,  # 1-based line of the record's header line
    "end_line": INT,  # last line of the record (continuation lines included)
    "ts": TS,  # as written in the log (Celery writes local time, no zone)
    "level": STR,  # DEBUG / INFO / WARNING / ERROR / CRITICAL
    "process": STR,  # MainProcess, ForkPoolWorker-3, Worker-1, Beat, ...
    "host": STR,  # node name (celery@host) when known, else the file's stem
    "logger": STR,  # logger name when the format carries it (JSON logs)
    "task_name": STR,
    "task_id": STR,
    "message": STR,  # first line of the message, prefix removed
    "text": STR,  # the whole record: message plus continuation lines
    "exc_type": STR,  # last exception class of a folded traceback
    "kind": STR,  # lifecycle kind, see analyses.lifecycle.KINDS
    "runtime_s": FLOAT,  # for succeeded records
    # set on records with an exception or at ERROR / CRITICAL (`sources.exceptions.classify`):
    "exc_category": STR,  # the category the exception-class table gives it (infrastructure), else null
    "template": STR,  # the message with ids, addresses and numbers masked (groups unclassified errors)
}

TASKS: Mapping[str, pl.DataType] = {
    "task_id": STR,
    "task_name": STR,
    "host": STR,
    "received_at": TS,
    "started_at": TS,
    "finished_at": TS,
    "state": STR,  # RECEIVED / STARTED / SUCCESS / FAILURE / RETRY / REVOKED / REJECTED / LOST
    "runtime_s": FLOAT,
    "retries": INT,
    "exc_type": STR,
    "source": STR,  # where the task was first seen
    "line": INT,
}

THREADS: Mapping[str, pl.DataType] = {
    "dump": STR,  # one id per captured dump (source plus process section)
    "source": STR,
    "line": INT,  # line of the thread header in the source
    "tool": STR,  # py-spy / py-spy-json / gdb / gdb-py-bt / gdb-mi / core / faulthandler / celery-cry
    "captured_at": TS,
    "host": STR,
    "pid": INT,
    "tid": INT,  # native thread id (LWP) when the tool gives it
    "thread_ident": STR,  # pthread_t as hex (faulthandler, gdb) when given
    "name": STR,
    "state": STR,  # lock_wait / io_wait / db_wait / sleep / running / idle / unknown
    "top": STR,  # innermost frame as "function (file:line)"
    "signature": STR,  # normalised stack, innermost first, for bucketing
    "bucket": INT,  # stack group over the whole bundle, 1 = the largest (same `bucket_key`)
    # what the dump parsers (`analyses.threads.finish`) add, the same for every tool:
    "thread_key": STR,  # "{source}:{header line}", joins a thread to its `frames` rows
    "status": STR,  # py-spy's idle / active / active+gil / gil; null for other tools
    "wait_call": STR,  # the frame that decided `state`: `pthread_mutex_lock`, `recv`, …
    "wait_on": STR,  # address waited on: mutex / futex / Python lock object (`0x7f…`)
    "wait_symbol": STR,  # that address's symbol when gdb printed one: `mutex_a`
    "mutex_owner": INT,  # LWP owning `wait_on` (gdb `__data.__owner`) when read
    "state_from": STR,  # which step decided `state`: idle / frames / locals / status / none
    "frames_count": INT,  # stack depth: rows of this thread in `frames`
    "gdb_num": INT,  # gdb's thread number (gdb / GDB/MI / core dumps)
    "fatal": STR,  # faulthandler: the fatal error of a crash dump (`Segmentation fault`)
    "bucket_key": STR,  # what `bucket` groups on (the signature at level exact)
    "bucket_size": INT,  # threads in that bucket
    "code": STR,  # where the thread is in Python code, `take (proj.py:31)`: its innermost application
    # frame, else its innermost Python frame; from another dump of the same thread when this one has
    # only C frames (gdb bt); else `top`
    "code_from": STR,  # which frame gave `code`: app / python / top
}

FRAMES: Mapping[str, pl.DataType] = {
    "dump": STR,
    "source": STR,
    "src_line": INT,  # line of the frame in the source
    "pid": INT,
    "tid": INT,
    "depth": INT,  # 0 = innermost
    "function": STR,
    "file": STR,
    "line": INT,
    "native": BOOL,
    "code": STR,  # source line text when the dump carries it (gdb py-bt, cry)
    "locals": STR,  # JSON object name -> repr, when the dump carries locals
    "role": STR,  # app / celery / stdlib / third_party / native
    "thread_key": STR,  # "{source}:{header line}" of its thread (`threads.thread_key`)
    "args": STR,  # gdb's argument list as printed (`mutex=0x7f84314a0040 <mutex_a>`)
}

WAITS: Mapping[str, pl.DataType] = {
    "waiter": STR,  # "host/pid/tid" or "pg:1687"
    "resource": STR,
    "holder": STR,
    "kind": STR,  # mutex / lock / rlock / fcntl / flock / lease / db / process (waitpid/join) / pipe / join
    "confidence": FLOAT,
    "inferred": BOOL,
    "evidence": STR,  # "source:line"
    # added by `analyses.waits`:
    "source": STR,  # the first evidence, split (findings' evidence and `explain` cite source/line)
    "line": INT,
    "ts": TS,  # when the edge was seen (dump capture / server log record), when known
    "host": STR,  # node name of the waiter, when known
    "task_id": STR,  # task the waiter runs, when known
    "holder_task_id": STR,  # task the holder runs, when known
    "waiter_name": STR,  # thread / process name of the waiter
    "holder_name": STR,
    "waiter_frame": STR,  # where the waiter waits (`take (proj.py:31): with second:`)
    "holder_frame": STR,  # where the holder took / holds the resource, when known
    "via": STR,  # how the edge was derived
    "all_evidence": pl.List(STR),  # every "source:line" behind the edge
    "resource_name": STR,  # what the code calls the resource: a lock's variable (`ledger_lock`), a mutex's symbol
    "resource_named_in": STR,  # where it has that name (`reconcile_accounts (proj.py:44)`), null for a C symbol
}

CYCLES: Mapping[str, pl.DataType] = {
    "cycle": INT,
    "members": pl.List(STR),
    "resources": pl.List(STR),
    "kind": STR,
    "evidence": pl.List(STR),
    "lock_order": pl.List(STR),
    "cycle_text": STR,  # for messages: "A waits for R1 held by B; …", for threads in code's words
    # ("ledger-writer" (tid 12504) waits in take (proj.py:31) `with second:` for `audit_lock`, …)
    "lock_order_text": STR,  # "R1 → R2"; for threads the locks' names (`ledger_lock` before `audit_lock`)
    # added by `analyses.cycles`:
    "members_text": STR,  # `w1@sample/12466/12504 "ledger-writer", …`
    "resources_text": STR,  # the resources, comma-separated
    "confidence": FLOAT,  # of the weakest edge
    "inferred": BOOL,  # whether any edge is inferred
    "holders_seen": BOOL,  # false when no dump shows who holds its locks (holders inferred: all threads blocked)
    "detail": STR,  # JSON list, per member: id, name, host, pid, tid, task_id, holds, waits_for
    "source": STR,  # the first evidence (findings cite source:line)
    "line": INT,
    "ts": TS,  # earliest time of its edges, when known
    "host": STR,  # a member's node name (a `celery@…` one first)
    "task_id": STR,  # a member's task, when known
    "task_ids": pl.List(STR),  # the members' tasks, sorted
    "message": STR,  # the cycle by ids and addresses (the evidence detail of findings)
}

# Diagnostic frames: live state and broker/host snapshots, one row per item of a snapshot.
INSPECT: Mapping[str, pl.DataType] = {  # `celery inspect active|reserved|scheduled`
    "source": STR, "line": INT, "host": STR, "task_id": STR, "task_name": STR,
    "state": STR,  # active / reserved / scheduled
    "time_start": TS, "worker_pid": INT, "acknowledged": BOOL, "redelivered": BOOL, "routing_key": STR,
    "eta": STR, "args": STR, "captured_at": TS,
}

WORKERS: Mapping[str, pl.DataType] = {  # `celery inspect stats`
    "source": STR, "line": INT, "host": STR, "pid": INT, "processes": pl.List(INT), "prefetch_count": INT,
    "max_concurrency": INT, "uptime": FLOAT, "pool": STR, "total": STR, "captured_at": TS,
}

REDIS_INFO: Mapping[str, pl.DataType] = {  # `redis-cli INFO`: one row per snapshot
    "source": STR, "line": INT,
    "redis_version": STR, "role": STR, "maxmemory_policy": STR, "master_link_status": STR,
    "connected_clients": INT, "maxclients": INT, "blocked_clients": INT, "rejected_connections": INT,
    "total_connections_received": INT, "used_memory": INT, "maxmemory": INT, "evicted_keys": INT, "loading": INT,
    "instantaneous_ops_per_sec": INT,
    "errorstat_oom": INT, "errorstat_wrongpass": INT, "errorstat_noauth": INT, "errorstat_readonly": INT,
    "errorstat_loading": INT, "errorstat_masterdown": INT, "errorstat_noperm": INT,
    "memory_used_ratio": FLOAT,  # used_memory / maxmemory (null when unlimited)
    "clients_used_ratio": FLOAT,  # connected_clients / maxclients
}

LIMITS: Mapping[str, pl.DataType] = {  # `ulimit -a`
    "source": STR, "line": INT, "name": STR, "flag": STR, "unit": STR,
    "value": INT,  # null for `unlimited`
    "raw": STR,
}

# `rabbitmqctl list_queues` (`sources.rabbitmq_queues`): one row per queue per listing; several
# listings in one file are snapshots in file order, so growth is a column, not a join.
QUEUES: Mapping[str, pl.DataType] = {
    "source": STR, "line": INT,
    "snapshot": INT,  # 0-based index of the listing in its file
    "ts": TS,  # from a `date` line printed before the listing (null without one), zone dropped
    "vhost": STR,  # from `Listing queues for vhost V ...` (null with -q)
    "name": STR,
    "messages": INT, "messages_ready": INT, "messages_unacknowledged": INT, "consumers": INT,
    "memory": INT,  # bytes held by the queue process
    "messages_delta": INT,  # messages minus those of the previous snapshot listing the same queue (null first)
    "interval_s": FLOAT,  # seconds since that snapshot, when both have a `date` line
    "text": STR,  # the row as printed
}

# Container runtime status (`sources.containers`): one row per container state that `kubectl describe
# pod`, `kubectl get pod -o json` or `docker inspect` reports (current and last), plus a row per pod the
# kubelet evicted. Times are the API's (UTC), zone dropped.
CONTAINERS: Mapping[str, pl.DataType] = {
    "source": STR,
    "line": INT,  # the line that says the reason (`Reason:  OOMKilled`), else the state's first line
    "tool": STR,  # kubectl-describe / kubectl-json / docker-inspect
    "pod": STR,  # pod name (docker: null)
    "namespace": STR,
    "node": STR,  # the node the pod ran on (describe `Node: name/ip` without the ip; docker: Config.Hostname)
    "host": STR,  # the Celery node (`celery@HOSTNAME`) whose hostname is `node` or `pod` (analyses.container_hosts)
    "container": STR,  # container name (docker: Name without `/`, else the Id's first 12 digits)
    "which": STR,  # state / last_state (the run before the current one) / pod (a pod-level status)
    "state": STR,  # running / waiting / terminated; pod rows: the phase (`failed`)
    "reason": STR,  # OOMKilled / Error / Completed / CrashLoopBackOff / Evicted / ... (docker: OOMKilled or null)
    "exit_code": INT,
    "signal": INT,  # the signal the runtime names, else exit_code - 128 for 129..159 (137 → 9)
    "oom_killed": BOOL,  # reason OOMKilled, or docker's State.OOMKilled
    "restart_count": INT,  # of the container, on each of its rows
    "started_at": TS,
    "finished_at": TS,
    "ts": TS,  # when the run this state covers began (started_at): what it explains happened after
    "ts_end": TS,  # when a run SIGKILLed (exit 137) ended (finished_at): a finding spans to it; else null
    "memory_limit": INT,  # bytes (resources.limits.memory / HostConfig.Memory; null: none given)
    "memory_limit_text": STR,  # as written (`50Mi`, `300Mi`, `536870912`)
    "message": STR,  # the runtime's or kubelet's message (`The node was low on resource: memory. …`)
    "text": STR,  # the state in words, for evidence: `last_state terminated OOMKilled exit 137`
}

# One row per task seen running and never finished (`analyses.threads.stuck_frame`).
STUCK: Mapping[str, pl.DataType] = {
    "task_id": STR,
    "task_name": STR,
    "host": STR,  # node name
    "pid": INT,  # pool process running it (inspect `worker_pid`); null when only the log saw it
    "tid": INT,  # native id of the thread running it in the dumps of that pid
    "time_start": TS,  # when it started (inspect `time_start` shifted to log time, else the log's start)
    "running_for_s": FLOAT,  # seconds from time_start to the (estimated) capture time
    "verdict": STR,  # stuck (same stack in successive dumps) / progressing (stack changed) / unknown
    "state": STR,  # lock_wait / io_wait / db_wait / sleep / running / unknown (its thread in the dumps)
    "waits_on": STR,  # the call or lock it waits in: `sock_recv`, `lock_PyThread_acquire_lock 0x7f…`
    "app_frame": STR,  # innermost application frame as ``file:line function``
    "bucket": INT,  # stack bucket of its thread (`threads.bucket`, numbered over the bundle)
    "dumps": INT,  # how many thread dumps show its thread
    "source": STR,  # evidence: the inspect output listing it, else the file of its last log record
    "line": INT,  # line of that inspect entry / log record
    "ts": TS,  # time of that evidence (inspect: the estimated capture time), for ranking
    "text": STR,  # the evidence as text: the log record, or the inspect entry summarised
    "summary": STR,  # the row in words, for finding messages: "in pid 15096 has run 12 s at capture, …"
    "typical_runtime_s": FLOAT,  # 95th percentile of the task name's successful runs in the bundle (null: none)
    "runtime_ratio": FLOAT,  # running_for_s / typical_runtime_s: how long it has run for what it is
}

# One row per single-threaded process parked on a Python lock nobody in it can release
# (`analyses.fork_locks.build`): the fork-while-locked hang.
FORK_WAITS: Mapping[str, pl.DataType] = {
    "source": STR,  # the dump showing the waiting thread
    "line": INT,  # line of its thread header there
    "tool": STR,
    "ts": TS,  # capture time of that dump when known
    "host": STR,  # node name (of the holder's process when the forked pid is unknown to inspect)
    "pid": INT,  # the parked process
    "tid": INT,
    "name": STR,  # its thread's name (py-spy's Python name when dumped by py-spy too)
    "lock": STR,  # address of the lock object it waits on (`0x7f…`)
    "lock_kind": STR,  # lock / rlock
    "frame": STR,  # where it waits, from py-spy --locals: `export_report (proj.py:43) `cache_lock``
    "threads": INT,  # threads of its process in the dumps (1)
    "process_role": STR,  # per `inspect stats`: worker / pool / other; null without stats
    "holder_pid": INT,  # a live thread of another process with the same lock address in its locals
    "holder_tid": INT,
    "holder_name": STR,
    "holder_frame": STR,
    "holder_evidence": STR,  # "source:line" of that frame
    "verdict": STR,  # held in another process / no holder in its process
    "summary": STR,  # the row in words, for finding messages
    "text": STR,  # the evidence: the waiting thread as its dump shows it (tool, wait call, address)
}

# Kernel log records that name a process (`sources.kernel_log`): OOM kills, their summary and reaper
# lines, segfaults. One row per such line.
KERNEL: Mapping[str, pl.DataType] = {
    "source": STR,
    "line": INT,
    "ts": TS,  # wall clock when the file anchors it (dmesg -T, a journald time), else null
    "uptime_s": FLOAT,  # printk time, seconds since boot (plain dmesg, kern.log), when written
    "host": STR,  # the machine, from a syslog / journald prefix; null for dmesg
    "event": STR,  # oom_kill / oom_select (older kernels' `Kill process … or sacrifice child`) / oom_summary /
    # oom_reaped / segfault
    "pid": INT,  # the killed / crashed process
    "comm": STR,  # its name as the kernel knows it (`celery`, `python3`)
    "anon_rss_kb": INT,  # oom_kill: its anonymous memory when killed
    "total_vm_kb": INT,
    "constraint": STR,  # CONSTRAINT_MEMCG (a cgroup limit ran out) / CONSTRAINT_NONE (the host) / …
    "memcg": STR,  # the killed task's memory cgroup (oom-kill summary `task_memcg=`)
    "library": STR,  # segfault: the mapping the faulting instruction was in (`libc.so.6`)
    "text": STR,  # the line as written
}

# A kernel OOM kill joined with the pool child billiard saw die (`analyses.oom`): per death, the worker log's
# `Process 'ForkPoolWorker-N' pid:P exited with 'signal 9 (SIGKILL)'` and each kernel line killing that pid
# (one per kernel log of the bundle: dmesg and dmesg -T of one machine are two).
OOM_KILLS: Mapping[str, pl.DataType] = {
    "source": STR,
    "line": INT,
    "ts": TS,  # the worker log's time (the kernel line's when it has one)
    "host": STR,  # the Celery node of the worker log
    "side": STR,  # kernel / worker: which line this row is
    "kill": STR,  # "source:line" of billiard's line: the key of the death
    "pid": INT,  # the pid both name
    "process": STR,  # the pool child (`ForkPoolWorker-1`)
    "comm": STR,
    "anon_rss_kb": INT,
    "constraint": STR,
    "memcg": STR,
    "task_id": STR,  # the task that was running in that child, when the logs show it
    "task_name": STR,
    "summary": STR,  # the pair in words, for finding messages
    "text": STR,
}

FRAME_SCHEMAS: Mapping[str, Mapping[str, pl.DataType]] = {
    "events": EVENTS,
    "tasks": TASKS,
    "threads": THREADS,
    "frames": FRAMES,
    "waits": WAITS,
    "cycles": CYCLES,
    "stuck": STUCK,
    "fork_waits": FORK_WAITS,
    "inspect": INSPECT,
    "workers": WORKERS,
    "redis_info": REDIS_INFO,
    "limits": LIMITS,
    "queues": QUEUES,
    "containers": CONTAINERS,
    "kernel": KERNEL,
    "oom_kills": OOM_KILLS,
}


# Frames a `Bundle` has an attribute for; `frame_map()` has these and the diagnostic frames.
ATTRIBUTE_FRAMES = ("events", "tasks", "threads", "frames", "waits", "cycles", "stuck")


def empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def conform(df: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Add missing columns as nulls, cast, and order columns as the contract says.

    Extra columns are kept after the contract's, so a parser can carry more detail.
    """
    missing = [pl.lit(None, dtype=dt).alias(name) for name, dt in schema.items() if name not in df.columns]
    if missing:
        df = df.with_columns(missing)
    casts = [pl.col(name).cast(dt) for name, dt in schema.items() if df.schema[name] != dt]
    if casts:
        df = df.with_columns(casts)
    extra = [c for c in df.columns if c not in schema]
    return df.select([*schema.keys(), *extra])
