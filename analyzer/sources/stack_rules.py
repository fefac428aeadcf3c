"""Data tables for stacks: frame roles, wait states, idle plumbing, noise and masks.

Kept as data (STYLE: "Noise lists and normalisation are data"), in the manner of ClusterFuzz's
frame ignore-lists and Drain3's masks. Every table is ordered; the first matching row wins.
Each pattern is a Rust-regex (polars) pattern and names a real frame it was written for.

Frames reach these tables as `function` and `file` columns. `file` is what the tool printed:
py-spy's short name (`celery/app/trace.py`), faulthandler's / py-bt's full path, a shared object
(`libc.so.6`), a C file (`./nptl/pthread_mutex_lock.c`) or `<built-in>` for py-bt C calls.
"""

from __future__ import annotations

# --- frame roles (frames.role) ---------------------------------------------------------------
# (role, file regex). Native frames are decided earlier (frames.native); these order Python files.
ROLE_BY_FILE: list[tuple[str, str]] = [
    # `_install_stack_protection.<locals>.__protected_call__ (celery/app/trace.py:883)`
    # `Worker.workloop (billiard/pool.py:369)`, `/…/site-packages/kombu/asynchronous/hub.py`
    ("celery", r"(?:^|/)(?:celery|kombu|billiard|amqp|vine|redis)/[^/]+"),
    # `<module> (celery:6)`: the `celery` console script itself
    ("celery", r"(?:^|/)bin/celery$|^celery$"),
    # `/…/site-packages/click/core.py`, `/…/dist-packages/psycopg2/extras.py`
    ("third_party", r"(?:site|dist)-packages/"),
    # `/root/.pyenv/versions/3.11.7/lib/python3.11/threading.py`
    ("stdlib", r"(?:^|/)lib/python3\.\d+/"),
    # py-spy short names of the standard library: `Thread.join (threading.py:1119)`
    ("stdlib", r"^(?:threading|socket|ssl|selectors|select|queue|subprocess|asyncio/[\w/]+|"
               r"concurrent/futures/\w+|multiprocessing/\w+|http/client|urllib/\w+|time|"
               r"logging/__init__|logging/handlers|contextlib|functools|socketserver|"
               r"ctypes/__init__)\.py$"),
    # py-spy short names of common third-party packages: `Context.invoke (click/core.py:911)`
    ("third_party", r"^(?:click|psycopg2|pymysql|MySQLdb|sqlalchemy|requests|urllib3|django|"
                    r"filelock|kazoo|boto3|botocore|httpx|httpcore|anyio|grpc|gevent|eventlet)/"),
]

# Native frames: `0x7f84338a3f16 (libc.so.6)`, `pthread_mutex_lock (libc.so.6)`,
# `hold_then_take (deadlock.c:16)`, gdb's `at ./nptl/lowlevellock.c:49` / `from /lib64/libpthread.so.0`.
NATIVE_FILE = r"(?:\.so(?:\.[\d.]+)?|\.(?:c|h|cc|cpp|cxx|hpp|rs|S|s))$"
NATIVE_FUNCTION = r"^(?:0x[0-9a-fA-F]+|\?\?)$"

# --- wait states (threads.state) -------------------------------------------------------------
# (state, function regex, file regex or "" for any). Tried on frames from the innermost down to
# (and including) the first application frame; the first frame matching any row decides.
STATE_BY_FRAME: list[tuple[str, str, str]] = [
    # native mutex / futex: `#1  __GI___lll_lock_wait (futex=…)`, `pthread_mutex_lock (libc.so.6)`
    ("lock_wait", r"(?:^|_)(?:pthread_mutex_(?:timed)?lock|lll_lock_wait\w*|lll_mutex_lock\w*|"
                  r"pthread_cond_(?:timed)?wait\w*|pthread_rwlock_\w*lock)$", ""),
    # Python locks are semaphores: `#3  do_futex_wait (sem=…)`, `__new_sem_wait_slow64`,
    # `PyThread_acquire_lock_timed (libpython3.11.so.1.0)`, `lock_PyThread_acquire_lock`
    ("lock_wait", r"^(?:do_futex_wait|__new_sem_wait\w*|sem_(?:timed)?wait|__?sem_wait\w*|"
                  r"PyThread_acquire_lock\w*|acquire_timed|lock_PyThread_acquire_lock|rlock_acquire)$", ""),
    # fcntl / flock: `#0  __GI___fcntl64 (…)`, `flock (libc.so.6)`
    ("lock_wait", r"^(?:__GI___)?(?:fcntl(?:64)?|__libc_fcntl64|flock|lockf(?:64)?)$", ""),
    # py-bt C calls: `<built-in method __enter__ of _thread.lock object at remote 0x7f921f5db700>`
    ("lock_wait", r"^_thread\.(?:lock|RLock)\.(?:acquire|__enter__|acquire_lock)$", ""),
    # Python: `Thread._wait_for_tstate_lock (threading.py:1139)`, `Condition.wait (threading.py)`
    ("lock_wait", r"(?:^|\.)(?:_wait_for_tstate_lock|acquire|_acquire_restore)$", r"threading\.py$"),
    ("lock_wait", r"^(?:Condition|Event|Semaphore|BoundedSemaphore|Barrier)\.wait$|^wait$", r"threading\.py$"),
    # filelock: `BaseFileLock.acquire (filelock/_api.py:…)`
    ("lock_wait", r"(?:^|\.)acquire$", r"filelock/"),
    # futex of anything else: `#0  futex_wait (private=0, expected=2, futex_word=…)`
    ("lock_wait", r"^(?:futex_wait|__futex_abstimed_wait\w*|__GI___futex_abstimed_wait\w*)$", ""),
    # databases, native: libpq `PQexec`/`pqWait`/`pqSocketCheck`, libmysqlclient `vio_read`
    ("db_wait", r"^(?:PQ\w+|pq(?:Wait|WaitTimed|SocketCheck|SocketPoll|ReadData|GetResult)|"
                r"mysql_real_query|vio_read\w*|vio_io_wait)$", ""),
    # databases, Python: `_read_bytes (pymysql/connections.py:…)`, `do_execute (sqlalchemy/engine/default.py)`
    ("db_wait", r"", r"(?:^|/)(?:psycopg2|psycopg|pymysql|MySQLdb|asyncpg)/"),
    ("db_wait", r"(?:^|\.)(?:do_execute|do_executemany|do_commit|do_rollback)$", r"sqlalchemy/"),
    # sleep: `time.sleep` reaches `clock_nanosleep` (3.11+) or `select`; py-bt `<built-in function sleep>`
    ("sleep", r"^(?:__GI___)?(?:clock_nanosleep|__clock_nanosleep\w*|nanosleep|__nanosleep|"
              r"pysleep|time_sleep|usleep)$", ""),
    ("sleep", r"^(?:time\.)?sleep$", r"^<built-in>$|^$|time\.py$"),
    # socket / select I/O: `#0  __libc_recv (…)`, `sock_recv (…)`, `SocketIO.readinto (socket.py:…)`
    ("io_wait", r"^(?:__GI___|__libc_|__)?(?:recv|recvfrom|recvmsg|recv_into|read|readv|pread64|"
                r"select|pselect6?|poll|ppoll|epoll_wait|epoll_pwait|accept4?|connect|send|sendall|"
                r"sendto|sendmsg|write|SSL_read\w*|SSL_write\w*|SSL_do_handshake)(?:_nocancel)?$", ""),
    ("io_wait", r"^(?:sock_recv\w*|sock_call\w*|sock_accept|sock_connect\w*|internal_select|"
                r"select_select|select_poll_poll_impl|select_epoll_poll\w*|_ssl__SSLSocket_read\w*)$", ""),
    ("io_wait", r"^(?:socket|_socket\.socket|SSLSocket|_ssl\._SSLSocket|select\.epoll|select)\."
                r"(?:recv|recv_into|recvfrom|read|accept|connect|send|sendall|poll|select)$|"
                r"^(?:select|poll)$", r"^<built-in>$"),
    ("io_wait", r"(?:^|\.)(?:recv|recv_into|readinto|read|readline|_read_status|begin|getresponse|"
                r"select|poll|accept|create_connection|connect|sendall|_real_connect|do_handshake)$",
     r"(?:^|/)(?:socket|ssl|selectors|http/client|socketserver)\.py$"),
    # redis-py / kombu / amqp reading the broker socket: `_read_from_socket (redis/connection.py)`
    ("io_wait", r"(?:^|\.)(?:_read_from_socket|read_response|read_frame|_read|drain_events|"
                r"can_read\w*|readline)$", r"(?:^|/)(?:redis|amqp|kombu)/"),
]

# A thread whose stack contains one of these is executing a task: it is never idle plumbing.
# `build_tracer.<locals>.trace_task (celery/app/trace.py:564)` /
# `_install_stack_protection.<locals>.__protected_call__ (celery/app/trace.py:883)`
TASK_FRAME = r"(?:^|\.)(?:trace_task|__protected_call__|fast_trace_task)$"

# Idle prefork plumbing: a pool child waiting for work on its inqueue, the MainProcess consumer
# loop, the kombu hub, and Celery's own helper threads. A thread whose stack contains one of
# these frames and no TASK_FRAME is `idle`, whatever the wait at its top.
# (function regex, file regex)
IDLE_STACK: list[tuple[str, str]] = [
    # `Worker.workloop (billiard/pool.py:351)` waiting in `receive` → `_recv` → `poll`
    (r"(?:^|\.)(?:workloop|receive|_recv|wait_for_job)$", r"billiard/pool\.py$"),
    # MainProcess: `asynloop (celery/worker/loops.py:97)`, `synloop (…)`
    (r"(?:^|\.)(?:asynloop|synloop)$", r"celery/worker/loops\.py$"),
    # kombu event loop: `Hub.create_loop (kombu/asynchronous/hub.py:…)`, `Hub.run_forever`
    (r"(?:^|\.)(?:create_loop|run_forever|run_once)$", r"kombu/asynchronous/hub\.py$"),
    # Celery / kombu helper threads: `Timer.run (kombu/asynchronous/timer.py)`,
    # `bgThread.run (celery/utils/threads.py)`, billiard's result/task handler threads
    (r"(?:^|\.)(?:run|body)$", r"celery/utils/threads\.py$|kombu/asynchronous/timer\.py$"),
    (r"(?:^|\.)(?:_handle_results|_handle_tasks|_handle_workers|body|run)$", r"billiard/pool\.py$"),
    # gevent / eventlet hubs
    (r"(?:^|\.)(?:run|switch|wait)$", r"(?:gevent|eventlet)/hubs?/"),
]

# Locals of the innermost Python frame hinting at what a C call blocks on when the dump shows
# only Python frames (py-spy without --native): `second: <_thread.lock at 0x7f921f5db700>`.
STATE_BY_LOCAL_REPR: list[tuple[str, str]] = [
    ("lock_wait", r"<_thread\.(?:lock|RLock) at |<RLock at |<Condition at |<Semaphore at "),
    ("db_wait", r"<(?:psycopg2\.extensions\.)?(?:connection|cursor) at |<Connection at .*pymysql"),
    ("io_wait", r"<(?:socket|SSLSocket|SocketIO) at "),
]

# --- normalisation (signatures) --------------------------------------------------------------
# (pattern, mask) applied to frame names before they enter a signature, in order.
SIGNATURE_MASKS: list[tuple[str, str]] = [
    (r"^0x[0-9a-fA-F]+$", "?"),  # `0x7f84338a3f16 (libc.so.6)`: an unsymbolised address
    (r"^\?\?$", "?"),  # gdb `#0  0x00007fab70317bd3 in ?? ()`
    (r"^(?:__GI___|__GI_|___)", "__"),  # glibc aliases: `___pthread_mutex_lock` / `__GI___lll_lock_wait`
    (r" at remote 0x[0-9a-f]+", ""),  # py-bt object addresses
]

# Frames ignored by the "top3" bucketing level: interpreter and libc plumbing around waits.
# `_PyEval_EvalFrameDefault (…/ceval.c:4422)`, `cfunction_call`, `0x7f… (libc.so.6)`.
NOISE_FUNCTION = (r"^(?:\?|_?Py\w+|_Py\w+|cfunction_\w+|method_vectorcall\w*|do_call_core|"
                  r"thread_run|pythread_wrapper|start_thread|clone3?|__?libc_start\w*|"
                  r"futex_wait|__futex_\w+|__GI___futex\w+|do_futex_wait|__new_sem_wait\w*|"
                  r"lll_mutex_lock_optimized|acquire_timed|_call_function_pointer|ffi_call\w*|"
                  r"_ctypes_callproc|PyCFuncPtr_call|vectorcall_\w+|slot_tp_\w+|builtin_\w+|type_call|"
                  r"object_vacall|wrapper_call|method_\w+|partial_\w+|call_\w+|_?PyEval\w*)$")
