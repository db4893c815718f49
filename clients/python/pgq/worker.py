"""A pgq worker in Python: it runs functions registered with
``@pgq.register("reports.build")`` on jobs of the queues it is given, using
nothing but pgq's SQL API (``<schema>.claim``, ``complete``, ``fail``, ...),
so Go and Python workers share queues, results, retries and rescue.

Start it with ``python3 -m pgq worker -Q python -A myapp.tasks`` (see
README.md), or from code::

    pgq.Worker(dsn, queues=["python"], concurrency=4).run()

How it works (the same contract as a Go worker, docs/sql.md):

- It registers in ``<schema>.workers`` and sends a heartbeat every
  ``heartbeat_interval`` seconds from a thread of its own. If it dies, the
  Go workers' maintenance leader hands its running jobs back once the
  heartbeat is older than their RescueAfter (30 s by default).
- It LISTENs on ``<schema>.jobs`` and claims as soon as a job of its
  queues is enqueued, as many jobs as it has free slots, and polls every
  ``poll_interval`` seconds in case a notification is lost.
- Each job runs in a thread of its own. Limits and revokes reach the
  handler as exceptions raised inside that thread (``SoftTimeLimitExceeded``,
  ``TimeLimitExceeded``, ``Terminated``, ``WorkerShutdown``) at its next
  Python instruction; a handler blocked in C code (a long ``time.sleep``,
  a socket read) does not see them until it returns, so after
  ``cancel_grace`` seconds the worker takes the slot back, records the
  outcome and leaves the thread behind (use timeouts on blocking calls).
- On SIGINT or SIGTERM it stops claiming, lets running jobs finish for up
  to ``shutdown_timeout`` seconds, then hands the rest back to their
  queues (the attempt not counted) and removes its row. A second signal
  skips the wait.
"""

import ctypes
import inspect
import json
import logging
import os
import random
import select
import signal
import socket
import threading
import time
import traceback

from . import _db
from ._duration import go_duration
from .errors import (
    InvalidJob,
    PgqError,
    Permanent,
    Retry,
    Snooze,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
    WorkerShutdown,
    describe_exception,
)

log = logging.getLogger("pgq.worker")

# Defaults, the same as Go's worker.Config and worker.TaskOptions.
CONCURRENCY_DEFAULT = 4
POLL_INTERVAL_DEFAULT = 1.0
HEARTBEAT_INTERVAL_DEFAULT = 5.0
SHUTDOWN_TIMEOUT_DEFAULT = 30.0
CANCEL_GRACE_DEFAULT = 2.0
RETRY_DELAY_DEFAULT = 1.0
MAX_RETRY_DELAY_DEFAULT = 600.0

#: The error recorded for a job revoked with terminate (as Go's).
REVOKED_MESSAGE = "revoked: terminated while running"


class TaskSpec:
    """A registered task: its function and worker-side options."""

    def __init__(self, name, fn, max_retries=None, retry_delay=None, max_retry_delay=None,
                 time_limit=None, soft_time_limit=None, ignore_result=False, bind=False):
        self.name = name
        self.fn = fn
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.time_limit = time_limit
        self.soft_time_limit = soft_time_limit
        self.ignore_result = ignore_result
        self.bind = bind
        try:
            self.signature = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins
            self.signature = None

    def call_args(self, job):
        """The positional and keyword arguments for the job's args:
        an object is keyword arguments, an array positional ones, anything
        else one argument. Raises TypeError when they do not fit."""
        args = job.args
        if isinstance(args, dict):
            pos, kw = [], dict(args)
        elif isinstance(args, list):
            pos, kw = list(args), {}
        else:
            pos, kw = [args], {}
        if self.bind:
            pos.insert(0, job)
        if self.signature is not None:
            self.signature.bind(*pos, **kw)
        return pos, kw


class Registry:
    """Task names to functions. ``pgq.register`` fills the default one."""

    def __init__(self):
        self._tasks = {}
        self._lock = threading.Lock()

    def register(self, name, fn=None, **options):
        """Register fn for the task name; without fn, return a decorator."""
        from .client import TASK_MAX, TASK_RE, _check_name

        _check_name(name, "task", TASK_RE, TASK_MAX, "_ . : / -")
        for key in ("time_limit", "soft_time_limit", "retry_delay", "max_retry_delay"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise InvalidJob("pgq: register %s: %s must be a positive number of seconds" % (name, key))
        mr = options.get("max_retries")
        if mr is not None and (isinstance(mr, bool) or not isinstance(mr, int) or mr < 0):
            raise InvalidJob("pgq: register %s: max_retries must be a non-negative integer" % name)
        tl, soft = options.get("time_limit"), options.get("soft_time_limit")
        if tl is not None and soft is not None and soft >= tl:
            raise InvalidJob("pgq: register %s: soft_time_limit must be shorter than time_limit" % name)

        def add(f):
            if not callable(f):
                raise InvalidJob("pgq: register %s: not a function: %r" % (name, f))
            with self._lock:
                if name in self._tasks:
                    raise InvalidJob("pgq: task %s is registered twice" % name)
                self._tasks[name] = TaskSpec(name, f, **options)
            return f

        return add if fn is None else add(fn)

    def get(self, name):
        with self._lock:
            return self._tasks.get(name)

    def names(self):
        with self._lock:
            return sorted(self._tasks)


#: The registry ``pgq.register`` and ``python -m pgq worker`` use.
registry = Registry()


def register(name, max_retries=None, retry_delay=None, max_retry_delay=None, time_limit=None,
             soft_time_limit=None, ignore_result=False, bind=False):
    """Decorator: run the function for jobs of task ``name`` in Python workers.

    The job's args are passed as keyword arguments (a JSON object) or
    positional ones (an array); with ``bind=True`` the Job is passed first.
    The return value, which must be JSON-serialisable, is the job's result.

    Options, all the task's defaults on the worker side (what the job was
    enqueued with wins, as in Go): ``max_retries`` replaces the job's;
    ``retry_delay`` is the first retry's delay of the exponential backoff
    (1 s), doubled per attempt with +-25% jitter up to ``max_retry_delay``
    (600 s), unless the job has its own retry delay; ``time_limit`` and
    ``soft_time_limit`` in seconds; ``ignore_result`` drops the result.
    """
    return registry.register(name, max_retries=max_retries, retry_delay=retry_delay, max_retry_delay=max_retry_delay,
                             time_limit=time_limit, soft_time_limit=soft_time_limit, ignore_result=ignore_result, bind=bind)


class Job:
    """One attempt at a job, as a bound handler (``bind=True``) sees it."""

    def __init__(self, row, worker_id):
        (self.id, self.task, self.queue, self.priority, args, meta, self.attempt, self.max_retries,
         self.retry_delay_ms, time_limit_ms, soft_time_limit_ms, self.ignore_result, self.run_at,
         self.expires_at, self.created_at, self.started_at, self.parent_id, self.root_id) = row
        self.args = _json_value(args)
        self.headers = _json_value(meta) or {}
        self.worker_id = worker_id
        self.time_limit = None if time_limit_ms is None else time_limit_ms / 1000.0
        self.soft_time_limit = None if soft_time_limit_ms is None else soft_time_limit_ms / 1000.0
        self._soft = threading.Event()
        self._worker = None

    def __repr__(self):
        return "<pgq.Job %d %s attempt %d>" % (self.id, self.task, self.attempt)

    def soft_limit_exceeded(self):
        """Whether the attempt's soft time limit has passed."""
        return self._soft.is_set()

    def parent_result(self):
        """What the step before this one produced, for a step of a workflow
        (``<schema>.workflow_input``, Go's Job.ParentResult): the previous
        chain step's result, a chord callback's list of member results, or
        a failure for an error callback. None when there is nothing."""
        if self._worker is None:
            return None
        rows = self._worker._write("SELECT pgq.workflow_input(%s)::text", (self.id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None


def _json_value(v):
    if isinstance(v, (str, bytes, bytearray)):
        return json.loads(v)
    return v


# Outcome kinds of an attempt.
_SUCCEEDED, _FAILED, _CANCELLED, _SNOOZED, _HANDED_BACK = "succeeded", "failed", "cancelled", "snoozed", "handed back"


class _Outcome:
    def __init__(self, kind, result=None, error="", stack=None, permanent=False, retry_in=None, delay=0.0):
        self.kind = kind
        self.result = result
        self.error = error
        self.stack = stack
        self.permanent = permanent
        self.retry_in = retry_in
        self.delay = delay


class _Execution:
    """One claimed job from claim to outcome. The first of the handler
    returning and a timer taking the slot back decides the outcome."""

    def __init__(self, worker, job, spec):
        self.worker = worker
        self.job = job
        self.spec = spec
        self.lock = threading.Lock()
        self.resolved = False
        self.in_handler = False
        self.thread = None
        self.timers = []
        self.started = time.monotonic()
        self.hard_limit = None  # seconds; set when the job has one
        self.limit_hit = False
        self.revoked = False
        self.shutdown = False

    def resolve(self):
        with self.lock:
            if self.resolved:
                return False
            self.resolved = True
            return True

    def interrupt(self, exc_type):
        """Raise exc_type in the handler's thread if it is still in the handler."""
        with self.lock:
            if not self.in_handler or self.resolved or self.thread is None:
                return False
            return _async_raise(self.thread.ident, exc_type)

    def leave_handler(self):
        with self.lock:
            self.in_handler = False
            if self.thread is not None:
                _async_raise(self.thread.ident, None)  # drop an interrupt that came too late

    def cancel_timers(self):
        for t in self.timers:
            t.cancel()


def _async_raise(ident, exc_type):
    """Raise exc_type in thread ident at its next Python instruction (None
    clears a pending one). CPython only; elsewhere limits and revokes fall
    back to taking the slot back after the grace."""
    try:
        set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except AttributeError:  # pragma: no cover - not CPython
        return False
    n = set_async(ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type is not None else None)
    return n == 1


def default_worker_id():
    return "%s-%d-%s" % (socket.gethostname(), os.getpid(), "%06x" % random.getrandbits(24))


class Worker:
    """A Python pgq worker; see the module's documentation.

    ``connect`` is a function returning a new DB-API connection (psycopg2 or
    psycopg 3); or give ``dsn`` and the installed driver is used. The worker
    opens three connections: one to claim and listen, one to write
    outcomes and one for heartbeats.
    """

    def __init__(self, dsn=None, queues=("default",), concurrency=CONCURRENCY_DEFAULT, schema=None,
                 connect=None, registry=None, worker_id=None, poll_interval=POLL_INTERVAL_DEFAULT,
                 heartbeat_interval=HEARTBEAT_INTERVAL_DEFAULT, shutdown_timeout=SHUTDOWN_TIMEOUT_DEFAULT,
                 cancel_grace=CANCEL_GRACE_DEFAULT, burst=False, listen=True):
        from .client import QUEUE_MAX, QUEUE_RE, _check_name

        if connect is None:
            if not dsn:
                raise PgqError("pgq: the worker needs a database: pass dsn= or connect=")
            connect = _db.connector(dsn)
        self._connect = connect
        self.schema = _db.resolve_schema(schema)
        queues = [queues] if isinstance(queues, str) else list(queues or ["default"])
        self.queues = []
        for q in queues:
            _check_name(q, "queue", QUEUE_RE, QUEUE_MAX, "_ . : -")
            if q not in self.queues:
                self.queues.append(q)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise PgqError("pgq: concurrency must be a positive integer")
        for name, value in (("poll_interval", poll_interval), ("heartbeat_interval", heartbeat_interval),
                            ("cancel_grace", cancel_grace)):
            if not value or value <= 0:
                raise PgqError("pgq: %s must be a positive number of seconds" % name)
        if shutdown_timeout is None or shutdown_timeout < 0:
            raise PgqError("pgq: shutdown_timeout cannot be negative")
        self.concurrency = concurrency
        self.registry = registry if registry is not None else globals()["registry"]
        self.id = worker_id or default_worker_id()
        self.poll_interval = float(poll_interval)
        self.heartbeat_interval = float(heartbeat_interval)
        self.shutdown_timeout = float(shutdown_timeout)
        self.cancel_grace = float(cancel_grace)
        self.burst = burst
        self.listen = listen

        self._running = {}  # job id -> _Execution holding a slot
        self._running_lock = threading.Lock()
        self._stopping = threading.Event()
        self._beat_stop = threading.Event()  # heartbeats go on until the shutdown is done
        self._hurry = threading.Event()  # a second signal: do not wait for jobs
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._writer = None
        self._writer_lock = threading.Lock()
        self._main = None
        self._started_at = time.monotonic()

    # -- connections -------------------------------------------------------

    def _open(self):
        conn = self._connect()
        conn.autocommit = True
        return conn

    def _sql(self, conn, sql, params=()):
        return _db.execute(conn, sql.replace("pgq.", '"%s".' % self.schema), list(params))

    def _write(self, sql, params):
        """Run an outcome statement on the writer connection, reconnecting
        and retrying while the database is unreachable (giving up after a
        few tries once the worker is stopping: the shutdown's hand-back or
        a rescue takes over)."""
        tries = 0
        while True:
            tries += 1
            with self._writer_lock:
                try:
                    if self._writer is None:
                        self._writer = self._open()
                    return self._sql(self._writer, sql, params)
                except InvalidJob:
                    raise
                except Exception as exc:
                    if _db.sqlstate(exc) is not None and not _connection_error(exc):
                        raise
                    log.warning("writing a job outcome failed; retrying: %s", exc)
                    _close_quietly(self._writer)
                    self._writer = None
            if self._stopping.is_set() and tries >= 3:
                raise PgqError("pgq: could not write a job outcome: database unreachable")
            time.sleep(min(0.05 * 2 ** tries, 5.0))

    # -- signals and stopping ------------------------------------------------

    def stop(self, now=False):
        """Ask the worker to stop (what SIGTERM does); now=True skips the
        wait for running jobs (a second signal). Safe from any thread."""
        if now or self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()
        self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _on_signal(self, signum, frame):
        if self._stopping.is_set():
            log.warning("second signal: handing running jobs back now")
        else:
            log.info("pgq worker: stopping; running jobs may finish (signal again to hand them back at once)")
        self.stop()

    # -- the main loop -------------------------------------------------------

    def run(self):
        """Run until stopped (a signal, stop(), a shutdown control message,
        or in burst mode an empty queue). Returns 0."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        self._main = self._open()
        self._writer = self._open()
        self._register(self._main)
        # Jobs an earlier process with this id left running (it died without
        # handing them back): rescued now, or this process's heartbeats
        # would keep them from ever being rescued.
        n = self._sql(self._main, "SELECT pgq.rescue_previous_jobs(%s)", [self.id])[0][0]
        if n:
            log.warning("rescued %d job(s) an earlier process with id %s left running", n, self.id)
        log.info("pgq worker %s: queues %s, concurrency %d, tasks %s", self.id, ",".join(self.queues),
                 self.concurrency, ", ".join(self.registry.names()) or "none")
        beat = threading.Thread(target=self._heartbeat_loop, name="pgq-heartbeat", daemon=True)
        beat.start()
        try:
            self._loop()
        finally:
            self._shutdown()
            self._beat_stop.set()
            beat.join(timeout=self.heartbeat_interval + 5)
            _close_quietly(self._main)
            _close_quietly(self._writer)
        log.info("pgq worker %s: stopped", self.id)
        return 0

    def _register(self, conn):
        meta = json.dumps({"language": "python", "tasks": self.registry.names()[:100]})
        self._sql(conn, "SELECT pgq.register_worker(%s, %s, %s, %s, %s, %s::jsonb)",
                  [self.id, self.queues, self.concurrency, socket.gethostname(), os.getpid(), meta])

    def _listen(self):
        if not self.listen:
            return
        cur = self._main.cursor()
        try:
            cur.execute('LISTEN "%s.jobs"' % self.schema)
            cur.execute('LISTEN "%s.control"' % self.schema)
        finally:
            cur.close()

    def _loop(self):
        self._listen()
        failures = 0
        claim_now = True
        while not self._stopping.is_set():
            try:
                if self._main is None:
                    self._main = self._open()
                    self._listen()
                    claim_now = True
                got, free = 0, 0
                if claim_now:
                    free = self.concurrency - self._busy()
                    if free > 0:
                        got = self._claim(free)
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("database unreachable; retrying: %s", exc)
                _close_quietly(self._main)
                self._main = None
                self._stopping.wait(min(0.05 * 2 ** failures, 5.0))
                continue
            if self.burst and got == 0 and self._busy() == 0:
                log.info("burst: no runnable job left")
                return
            if got and got == free:
                continue  # a full batch: more may be waiting
            timeout = self.poll_interval
            if free > 0:
                # A retry or countdown due before the next poll: wake for it.
                try:
                    due = self._sql(self._main, "SELECT pgq.next_run_in(%s)", [self.queues])[0][0]
                except Exception as exc:
                    log.debug("next_run_in failed; polling: %s", exc)
                    due = None
                if due is not None:
                    timeout = min(timeout, max(due, 0.0) + 0.005)
            claim_now = self._wait(timeout)

    def _busy(self):
        with self._running_lock:
            return len(self._running)

    def _wait(self, timeout):
        """Wait for a wake-up: a job of our queues, a freed slot, a control
        message, a signal. Returns whether to claim."""
        raw = self._main if self.listen else None
        # Notifications read while a statement ran (the claim) are waiting
        # in the driver already: the socket will not signal them again.
        if raw is not None and self._notifications(raw):
            return True
        fds = [self._wake_r] + ([raw] if raw is not None else [])
        try:
            ready = select.select(fds, [], [], timeout)[0]
        except (OSError, ValueError):
            ready = []
        claim = not ready  # a timeout is the poll
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            claim = True
        if raw is not None and self._notifications(raw):
            claim = True
        return claim

    def _notifications(self, raw):
        """Handle the notifications that have arrived; whether one was a job
        of our queues (or the connection broke: claim, which reconnects)."""
        try:
            notes = _drain_notifies(raw)
        except Exception as exc:
            log.warning("listening connection lost; reconnecting: %s", exc)
            _close_quietly(self._main)
            self._main = None
            return True
        claim = False
        for channel, payload in notes:
            if channel == "%s.jobs" % self.schema:
                if payload in self.queues:
                    claim = True
            elif channel == "%s.control" % self.schema:
                self._control(payload)
        return claim

    def _claim(self, free):
        rows = self._sql(
            self._main,
            "SELECT id, task, queue, priority, args::text, meta::text, attempt, max_retries, retry_delay_ms, "
            "time_limit_ms, soft_time_limit_ms, ignore_result, run_at, expires_at, created_at, started_at, "
            "parent_id, root_id FROM pgq.claim(%s, %s, %s)",
            [self.id, self.queues, free],
        )
        for row in rows:
            job = Job(row, self.id)
            job._worker = self
            self._start(job)
        return len(rows)

    # -- running one job -----------------------------------------------------

    def _start(self, job):
        spec = self.registry.get(job.task)
        ex = _Execution(self, job, spec)
        if spec is not None and spec.max_retries is not None:
            job.max_retries = spec.max_retries
        hard = job.time_limit if job.time_limit is not None else (spec.time_limit if spec else None)
        soft = job.soft_time_limit if job.soft_time_limit is not None else (spec.soft_time_limit if spec else None)
        if hard is not None and soft is not None and soft >= hard:
            soft = None
        job.time_limit, job.soft_time_limit = hard, soft
        ex.hard_limit = hard
        with self._running_lock:
            self._running[job.id] = ex
        log.debug("job started: job_id=%d task=%s queue=%s attempt=%d", job.id, job.task, job.queue, job.attempt)
        ex.thread = threading.Thread(target=self._execute, args=(ex,), name="pgq-job-%d" % job.id, daemon=True)
        if soft is not None:
            ex.timers.append(_timer(soft, self._soft_limit, ex))
        if hard is not None:
            ex.timers.append(_timer(hard, self._hard_limit, ex))
        ex.thread.start()
        for t in ex.timers:
            t.start()

    def _soft_limit(self, ex):
        ex.job._soft.set()
        ex.interrupt(SoftTimeLimitExceeded)

    def _hard_limit(self, ex):
        ex.limit_hit = True
        ex.interrupt(TimeLimitExceeded)
        self._take_back_later(ex, lambda: self._failure(ex, self._limit_error(ex, None), None),
                              "handler ignored its time limit: slot taken back, the handler still runs")

    def _take_back_later(self, ex, outcome, message):
        def take_back():
            if ex.resolve():
                log.error("%s: job_id=%d task=%s attempt=%d", message, ex.job.id, ex.job.task, ex.job.attempt)
                self._finish(ex, outcome())
        t = _timer(self.cancel_grace, take_back)
        ex.timers.append(t)
        t.start()

    def terminate(self, job_id):
        """Stop the handler of a held job revoked with terminate; the job
        ends cancelled. Returns whether this worker holds the job."""
        with self._running_lock:
            ex = self._running.get(job_id)
        if ex is None:
            return False
        with ex.lock:
            if ex.revoked:
                return True
            ex.revoked = True
        log.info("job revoked: cancelling its handler: job_id=%d task=%s attempt=%d", job_id, ex.job.task, ex.job.attempt)
        ex.interrupt(Terminated)
        self._take_back_later(ex, lambda: _Outcome(_CANCELLED, error=REVOKED_MESSAGE),
                              "revoked handler ignored the revoke: slot taken back, the handler still runs")
        return True

    def _execute(self, ex):
        outcome = None
        try:
            outcome = self._attempt(ex)
        except BaseException as exc:  # an interrupt that landed outside the handler
            outcome = self._decide_error(ex, exc, traceback.format_exc())
        finally:
            ex.cancel_timers()
            if ex.resolve():
                self._finish(ex, outcome or _Outcome(_FAILED, error="pgq: the handler's outcome was lost", permanent=False))
            else:
                log.warning("handler returned after its slot was taken back; its outcome is dropped: job_id=%d task=%s",
                            ex.job.id, ex.job.task)

    def _attempt(self, ex):
        job, spec = ex.job, ex.spec
        if spec is None:
            return _Outcome(_FAILED, permanent=True, error=(
                'unknown task "%s": worker %s has no handler for it (it handles %s); register one with '
                "@pgq.register, or route the task to a queue whose workers handle it"
                % (job.task, self.id, ", ".join(self.registry.names()[:10]) or "no tasks")))
        try:
            pos, kw = spec.call_args(job)
        except TypeError as exc:
            return _Outcome(_FAILED, permanent=True, error="cannot decode args: %s: %s" % (spec.name, exc))
        try:
            with ex.lock:
                ex.in_handler = True
            try:
                value = spec.fn(*pos, **kw)
            finally:
                ex.leave_handler()
        except BaseException as exc:
            return self._decide_error(ex, exc, traceback.format_exc())
        return self._decide_success(ex, value)

    def _decide_success(self, ex, value):
        if ex.job.ignore_result or ex.spec.ignore_result:
            return _Outcome(_SUCCEEDED, result=None)
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as exc:
            return _Outcome(_FAILED, permanent=True, error="encode result of task %s as JSON: %s" % (ex.job.task, exc))
        return _Outcome(_SUCCEEDED, result=text)

    def _limit_error(self, ex, returned):
        msg = "hard time limit of %s exceeded" % go_duration(ex.hard_limit)
        if returned is not None and not isinstance(returned, TimeLimitExceeded):
            msg += " (the handler returned: %s)" % describe_exception(returned)
        return msg

    def _decide_error(self, ex, exc, stack):
        if ex.revoked:
            msg = REVOKED_MESSAGE
            if not isinstance(exc, Terminated):
                msg += " (the handler returned: %s)" % describe_exception(exc)
            return _Outcome(_CANCELLED, error=msg)
        if ex.shutdown and isinstance(exc, WorkerShutdown):
            return _Outcome(_HANDED_BACK)
        if isinstance(exc, Snooze):
            return _Outcome(_SNOOZED, delay=exc.countdown)
        if ex.limit_hit or isinstance(exc, TimeLimitExceeded):
            return self._failure(ex, self._limit_error(ex, exc), stack)
        if isinstance(exc, Retry):
            return _Outcome(_FAILED, error=str(exc), stack=None, retry_in=exc.countdown)
        if isinstance(exc, Permanent):
            return _Outcome(_FAILED, error=str(exc), stack=stack, permanent=True)
        # Anything else, SystemExit and KeyboardInterrupt raised by the
        # handler included, is a failed attempt under the retry policy.
        return self._failure(ex, describe_exception(exc), stack)

    def _failure(self, ex, error, stack):
        return _Outcome(_FAILED, error=error, stack=stack)

    def _finish(self, ex, o):
        """Write an outcome, then free the slot."""
        job, spec = ex.job, ex.spec
        base = (self.id, job.id, job.attempt)
        stored = None
        try:
            if o.kind == _SUCCEEDED:
                rows = self._write("SELECT pgq.complete(%s, %s, %s, %s::jsonb)", base + (o.result,))
                stored = "succeeded" if rows and rows[0][0] else None
            elif o.kind == _FAILED:
                rows = self._write(
                    "SELECT pgq.fail(%s, %s, %s, %s, stack => %s, permanent => %s, "
                    "retry_in => make_interval(secs => %s::float8), max_retries => %s::integer, "
                    "retry_delay => make_interval(secs => %s::float8), max_retry_delay => make_interval(secs => %s::float8))",
                    base + (o.error, o.stack, o.permanent, o.retry_in, job.max_retries if spec else None,
                            spec.retry_delay if spec else None, spec.max_retry_delay if spec else None),
                )
                stored = rows[0][0] if rows else None
            elif o.kind == _CANCELLED:
                rows = self._write("SELECT pgq.finish(%s, %s, %s, 'cancelled', interval '0', %s)", base + (o.error,))
                stored = rows[0][0] if rows else None
            elif o.kind == _SNOOZED:
                rows = self._write("SELECT pgq.snooze(%s, %s, %s, make_interval(secs => %s::float8))", base + (o.delay,))
                stored = rows[0][0] if rows else None
            else:
                rows = self._write("SELECT pgq.hand_back(%s, %s, %s)", base)
                stored = rows[0][0] if rows else None
        except Exception as exc:
            log.error("job outcome not written (the shutdown hands it back, or a rescue does): job_id=%d task=%s error=%s",
                      job.id, job.task, exc)
        else:
            duration = time.monotonic() - ex.started
            if stored is None:
                log.warning("job lost: no longer held by this attempt (rescued or revoked): job_id=%d task=%s attempt=%d",
                            job.id, job.task, job.attempt)
            elif stored in ("failed", "retrying", "cancelled") and o.error:
                log.warning("job %s: job_id=%d task=%s queue=%s attempt=%d duration=%.3fs error=%s",
                            stored, job.id, job.task, job.queue, job.attempt, duration, o.error)
            else:
                log.info("job %s: job_id=%d task=%s queue=%s attempt=%d duration=%.3fs",
                         stored, job.id, job.task, job.queue, job.attempt, duration)
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)
            self._wake()

    # -- heartbeats and control ------------------------------------------------

    def _heartbeat_loop(self):
        conn = None
        failures = 0
        while not self._beat_stop.wait(self.heartbeat_interval if failures == 0 else min(0.05 * 2 ** failures, self.heartbeat_interval)):
            try:
                if conn is None:
                    conn = self._open()
                alive = self._sql(conn, "SELECT pgq.heartbeat(%s)", [self.id])[0][0]
                if not alive:
                    log.warning("worker row was gone (presumed dead after missed heartbeats; its jobs may run twice); registering again")
                    self._register(conn)
                for (job_id,) in self._sql(conn, "SELECT pgq.revoked_jobs(%s)", [self.id]):
                    self.terminate(job_id)
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("heartbeat failed; retrying: %s", exc)
                _close_quietly(conn)
                conn = None
        _close_quietly(conn)

    def _control(self, payload):
        try:
            msg = json.loads(payload)
            command = msg["command"]
        except (ValueError, KeyError, TypeError):
            log.warning("malformed control message ignored: %.200s", payload)
            return
        workers = msg.get("workers") or []
        if workers and self.id not in workers:
            return
        ok, error, data = True, None, None
        if command == "revoke":
            ids = (msg.get("args") or {}).get("job_ids") or []
            data = {"revoked": [i for i in ids if isinstance(i, int) and self.terminate(i)]}
        elif command == "ping":
            with self._running_lock:
                active = sorted(self._running)
            data = {"worker_id": self.id, "host": socket.gethostname(), "pid": os.getpid(), "queues": self.queues,
                    "concurrency": self.concurrency, "active": len(active), "active_jobs": active[:200],
                    "uptime_seconds": time.monotonic() - self._started_at, "shutting_down": self._stopping.is_set()}
        elif command == "shutdown":
            log.info("shutdown asked by a control message")
        else:
            ok, error = False, "the Python worker does not support %s" % command
        reply_to = msg.get("reply_to")
        if reply_to == "%s.control_reply" % self.schema:
            reply = {"id": msg.get("id", ""), "worker_id": self.id, "ok": ok}
            if error:
                reply["error"] = error
            if data is not None:
                reply["data"] = data
            try:
                self._sql(self._main, "SELECT pg_notify(%s, %s)", [reply_to, json.dumps(reply)])
            except Exception as exc:
                log.warning("control reply not sent: %s", exc)
        if command == "shutdown":
            self.stop()

    # -- shutdown ------------------------------------------------------------

    def _shutdown(self):
        """Stop fetching (done), let running jobs finish for up to
        shutdown_timeout, hand the rest back, and remove the worker's row."""
        deadline = time.monotonic() + self.shutdown_timeout
        while self._busy() and not self._hurry.is_set() and time.monotonic() < deadline:
            self._wait_wake(min(0.5, max(deadline - time.monotonic(), 0)))
        with self._running_lock:
            left = list(self._running.values())
        if left:
            log.info("shutdown: handing back %d running job(s)", len(left))
        for ex in left:
            with ex.lock:
                ex.shutdown = True
            ex.interrupt(WorkerShutdown)
        grace = time.monotonic() + (0 if self._hurry.is_set() else self.cancel_grace)
        while self._busy() and time.monotonic() < grace:
            self._wait_wake(min(0.1, max(grace - time.monotonic(), 0)))
        with self._running_lock:
            left = list(self._running.values())
        for ex in left:
            if ex.resolve():
                ex.cancel_timers()
                self._finish(ex, _Outcome(_HANDED_BACK))
        # Outcomes decided but still being written: let them land before
        # the row goes, or unregister_worker would hand back a job whose
        # completion is on its way (and it would run twice).
        writes = time.monotonic() + 10
        while self._busy() and time.monotonic() < writes:
            self._wait_wake(0.05)
        try:
            if self._main is None:
                self._main = self._open()
            n = self._sql(self._main, "SELECT pgq.unregister_worker(%s)", [self.id])[0][0]
            if n:
                log.info("shutdown: %d more job(s) handed back", n)
        except Exception as exc:
            log.error("could not remove the worker's row (its jobs are rescued once its heartbeat expires): %s", exc)

    def _wait_wake(self, timeout):
        try:
            if select.select([self._wake_r], [], [], timeout)[0]:
                while os.read(self._wake_r, 512):
                    pass
        except (BlockingIOError, OSError, ValueError):
            pass


def _timer(seconds, fn, *args):
    t = threading.Timer(seconds, fn, args=args)
    t.daemon = True
    return t


def _close_quietly(conn):
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        pass


def _connection_error(exc):
    """Whether a database error means the connection is unusable."""
    code = _db.sqlstate(exc) or ""
    return code.startswith("08") or code in ("57P01", "57P02", "57P03")


def _drain_notifies(raw):
    """(channel, payload) of the notifications that arrived on a driver
    connection (psycopg2 or psycopg 3), without blocking."""
    notifies = getattr(raw, "notifies", None)
    if isinstance(notifies, list):  # psycopg2
        raw.poll()
        out = [(n.channel, n.payload) for n in notifies]
        del notifies[:]
        return out
    try:  # psycopg >= 3.2
        return [(n.channel, n.payload) for n in raw.notifies(timeout=0)]
    except TypeError:  # pragma: no cover - psycopg 3.0/3.1: rely on polling
        return []


__all__ = ["Job", "Registry", "TaskSpec", "Worker", "register", "registry"]
