"""Enqueueing jobs, tasks and results: pgq's Python client."""

import datetime
import json
import math
import numbers
import re
import select
import time

from . import _db
from .errors import InvalidJob, JobFailed, JobNotFound, JobRevoked, TimeoutError

# The same rules as queue/validate.go and pgq.enqueue.
TASK_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$")
QUEUE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
TASK_MAX = 200
QUEUE_MAX = 100
UNIQUE_KEY_MAX = 255

# Celery's names for job states, as AsyncResult.state reports them.
PENDING = "PENDING"  # scheduled or available
STARTED = "STARTED"  # running
RETRY = "RETRY"  # failed an attempt, waiting for the next
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"  # cancelled

_CELERY_STATE = {
    "running": STARTED,
    "retrying": RETRY,
    "succeeded": SUCCESS,
    "failed": FAILURE,
    "cancelled": REVOKED,
}
FINISHED_STATES = frozenset(("succeeded", "failed", "cancelled"))
WAITING_STATES = ("scheduled", "available", "retrying")

#: How long AsyncResult.get waits at most between two looks at the job.
RESULT_POLL_INTERVAL = 0.5

# Matches a \u0000 escape (not an escaped backslash followed by "u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def celery_state(state):
    """Map a pgq state to Celery's word for it (the same mapping as Go's queue.CeleryState)."""
    return _CELERY_STATE.get(state, PENDING)


def _to_json(value, what):
    """Encode value as JSON text that jsonb can store, or raise InvalidJob."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidJob("pgq: %s are not JSON-serialisable: %s" % (what, exc)) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJob("pgq: %s contain a lone surrogate, which PostgreSQL's jsonb cannot store" % what) from None
    if _NUL_ESCAPE.search(text):
        raise InvalidJob("pgq: %s contain a NUL character (\\u0000), which PostgreSQL's jsonb cannot store" % what)
    return text


def _check_name(value, kind, pattern, max_len, symbols):
    if not isinstance(value, str):
        raise InvalidJob("pgq: %s name must be a string, not %s" % (kind, type(value).__name__))
    if value == "":
        raise InvalidJob("pgq: %s name is empty" % kind)
    if len(value) > max_len or not pattern.match(value):
        raise InvalidJob(
            "pgq: invalid %s name %r: use up to %d letters, digits and %s, not starting with a symbol"
            % (kind, value, max_len, symbols)
        )
    return value


def _check_int(value, name, low, high=None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidJob("pgq: %s must be an integer, not %s" % (name, type(value).__name__))
    value = int(value)
    if value < low or (high is not None and value > high):
        if name == "priority":
            raise InvalidJob("pgq: priority %d is out of range: use 0 (lowest, the default) to 9 (highest)" % value)
        raise InvalidJob("pgq: %s cannot be negative" % name)
    return value


def _seconds(value, name, positive=False):
    """A duration in seconds (a number or a timedelta), checked."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidJob("pgq: %s must be a number of seconds or a timedelta, not %s" % (name, type(value).__name__))
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise InvalidJob("pgq: %s must be a finite number of seconds" % name)
    if positive and value <= 0:
        raise InvalidJob("pgq: %s must be positive" % name)
    if value < 0:
        raise InvalidJob("pgq: %s cannot be negative" % name)
    return value


def _timestamp(value, name):
    """An aware datetime as ISO 8601 text, checked."""
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise InvalidJob("pgq: %s must be a datetime, not %s" % (name, type(value).__name__))
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidJob("pgq: %s must be timezone-aware (e.g. datetime.now(timezone.utc))" % name)
    return value.isoformat()


# Python option -> (SQL argument, SQL type).
_OPTIONS = (
    "queue",
    "countdown",
    "eta",
    "expires",
    "priority",
    "max_retries",
    "retry_delay",
    "time_limit",
    "soft_time_limit",
    "ignore_result",
    "unique_key",
    "headers",
)


def _prepare(
    task,
    args=None,
    queue=None,
    countdown=None,
    eta=None,
    priority=None,
    max_retries=None,
    unique_key=None,
    headers=None,
    expires=None,
    retry_delay=None,
    time_limit=None,
    soft_time_limit=None,
    ignore_result=False,
    **unknown
):
    """Check one job's input and return it as pgq.enqueue's arguments:
    (name, SQL type, value) triples after task and args, values in the
    form both pgq.enqueue and pgq.enqueue_many take. Raises InvalidJob."""
    if unknown:
        raise InvalidJob(
            "pgq: unknown option %s; known options: %s"
            % (", ".join(repr(k) for k in sorted(unknown)), ", ".join(_OPTIONS))
        )
    task = _check_name(task, "task", TASK_RE, TASK_MAX, "_ . : / -")
    args_json = _to_json({} if args is None else args, "args")
    named = []
    if queue is None:
        queue = _db.default_queue()
    if queue is not None:
        named.append(("queue", "text", _check_name(queue, "queue", QUEUE_RE, QUEUE_MAX, "_ . : -")))
    if countdown is not None and eta is not None:
        raise InvalidJob("pgq: set eta or countdown, not both")
    countdown = _seconds(countdown, "countdown")
    if countdown is not None:
        named.append(("countdown", "seconds", countdown))
    eta = _timestamp(eta, "eta")
    if eta is not None:
        named.append(("run_at", "timestamptz", eta))
    if expires is not None:
        if isinstance(expires, datetime.datetime):
            named.append(("expires_at", "timestamptz", _timestamp(expires, "expires")))
        else:
            named.append(("expires_at", "expires_in", _seconds(expires, "expires")))
    priority = _check_int(priority, "priority", 0, 9)
    if priority is not None:
        named.append(("priority", "integer", priority))
    max_retries = _check_int(max_retries, "max_retries", 0)
    if max_retries is not None:
        named.append(("max_retries", "integer", max_retries))
    for name, value in (("retry_delay", retry_delay), ("time_limit", time_limit), ("soft_time_limit", soft_time_limit)):
        value = _seconds(value, name, positive=True)
        if value is not None:
            named.append((name, "seconds", value))
    if not isinstance(ignore_result, bool):
        raise InvalidJob("pgq: ignore_result must be True or False")
    if ignore_result:
        named.append(("ignore_result", "boolean", True))
    if unique_key is not None:
        if not isinstance(unique_key, str) or not 1 <= len(unique_key) <= UNIQUE_KEY_MAX:
            raise InvalidJob("pgq: unique_key must be 1 to 255 characters")
        if "\x00" in unique_key:
            raise InvalidJob("pgq: unique_key cannot contain a NUL character")
        named.append(("unique_key", "text", unique_key))
    if headers is not None:
        if not isinstance(headers, dict):
            raise InvalidJob("pgq: headers must be a dict (a JSON object), not %s" % type(headers).__name__)
        named.append(("meta", "jsonb", _to_json(headers, "headers")))
    return task, args_json, named


def enqueue(
    task,
    args=None,
    queue=None,
    countdown=None,
    eta=None,
    priority=None,
    max_retries=None,
    unique_key=None,
    headers=None,
    connection=None,
    schema=None,
    expires=None,
    retry_delay=None,
    time_limit=None,
    soft_time_limit=None,
    ignore_result=False,
    **unknown
):
    """Enqueue a job on the caller's connection and return its AsyncResult.

    The job is part of the connection's current transaction: it exists only
    if that transaction commits, and workers are woken at commit. With
    Django, ``connection`` defaults to ``django.db.connection`` (so inside
    ``transaction.atomic()`` the job commits or rolls back with your rows),
    ``schema`` to the PGQ_SCHEMA setting and ``queue`` to PGQ_DEFAULT_QUEUE.

    ``args`` is any JSON value (None means ``{}``); a Go handler decodes it
    into its args struct by JSON field names. Options: ``queue``,
    ``countdown`` (seconds or a timedelta) or ``eta`` (an aware datetime)
    to delay the job, ``expires`` (seconds from now, or an aware datetime)
    to discard it if it has not started by then, ``priority`` (0-9),
    ``max_retries``, ``retry_delay``, ``time_limit``, ``soft_time_limit``,
    ``ignore_result``, ``unique_key`` and ``headers`` (a dict). Options
    left None take the queue's defaults, then pgq's.

    Bad input raises InvalidJob before anything is sent; the database's own
    checks (SQLSTATE 22023) raise it too.
    """
    task, args_json, named = _prepare(
        task, args, queue=queue, countdown=countdown, eta=eta, priority=priority, max_retries=max_retries,
        unique_key=unique_key, headers=headers, expires=expires, retry_delay=retry_delay, time_limit=time_limit,
        soft_time_limit=soft_time_limit, ignore_result=ignore_result, **unknown
    )
    sql_args = [task, args_json]
    parts = ["%s", "%s::jsonb"]
    for name, kind, value in named:
        if kind == "seconds":
            parts.append("%s => make_interval(secs => %%s::double precision)" % name)
        elif kind == "expires_in":
            parts.append("%s => now() + make_interval(secs => %%s::double precision)" % name)
        else:
            parts.append("%s => %%s::%s" % (name, kind))
        sql_args.append(value)
    schema = _db.resolve_schema(schema)
    connection = _db.resolve_connection(connection)
    sql = 'SELECT "%s".enqueue(%s)' % (schema, ", ".join(parts))
    rows = _db.execute(connection, sql, sql_args)
    return AsyncResult(rows[0][0], connection=connection, schema=schema, task=task)


def enqueue_many(jobs, connection=None, schema=None):
    """Enqueue several jobs in one statement (``<schema>.enqueue_many``) and
    return their AsyncResults, in order.

    ``jobs`` is a list of dicts, each with ``task``, optional ``args`` and
    any option of enqueue (``queue``, ``countdown``, ``priority``, ...).
    Every job is checked before anything is sent; a bad one raises
    InvalidJob naming its index. Like enqueue, the jobs are part of the
    connection's transaction. ``expires`` in seconds is counted from this
    machine's clock (an aware datetime is taken as it is).
    """
    if isinstance(jobs, (str, bytes, dict)) or not hasattr(jobs, "__iter__"):
        raise InvalidJob("pgq: enqueue_many takes a list of dicts, not %s" % type(jobs).__name__)
    items = []
    tasks = []
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise InvalidJob("pgq: jobs[%d] must be a dict, not %s" % (i, type(job).__name__))
        if "task" not in job:
            raise InvalidJob("pgq: jobs[%d] has no task" % i)
        opts = dict(job)
        try:
            task, args_json, named = _prepare(opts.pop("task"), opts.pop("args", None), **opts)
        except InvalidJob as exc:
            raise InvalidJob("pgq: jobs[%d]: %s" % (i, str(exc)[len("pgq: "):] if str(exc).startswith("pgq: ") else exc)) from None
        item = ['"task":%s' % json.dumps(task), '"args":%s' % args_json]
        for name, kind, value in named:
            if kind == "jsonb":
                item.append('"%s":%s' % (name, value))
            elif kind == "expires_in":
                at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=value)
                item.append('"%s":%s' % (name, json.dumps(at.isoformat())))
            else:
                item.append('"%s":%s' % (name, json.dumps(value)))
        items.append("{" + ",".join(item) + "}")
        tasks.append(task)
    if not items:
        return []
    schema = _db.resolve_schema(schema)
    connection = _db.resolve_connection(connection)
    rows = _db.execute(connection, 'SELECT "%s".enqueue_many(%%s::jsonb)' % schema, ["[" + ",".join(items) + "]"])
    ids = rows[0][0]
    if isinstance(ids, str):  # a driver that does not parse bigint[]
        ids = [int(x) for x in ids.strip("{}").split(",") if x]
    return [AsyncResult(i, connection=connection, schema=schema, task=t) for i, t in zip(ids, tasks)]


class Task:
    """A named task, called Celery's way: ``send_email = pgq.task("emails.send")``.

    ``defaults`` are enqueue options (queue, priority, max_retries, …) used
    when a call does not give them.
    """

    def __init__(self, name, **defaults):
        _check_name(name, "task", TASK_RE, TASK_MAX, "_ . : / -")
        bad = sorted(set(defaults) - set(_OPTIONS) - {"connection", "schema"})
        if bad:
            raise InvalidJob("pgq: unknown option %s; known options: %s" % (", ".join(map(repr, bad)), ", ".join(_OPTIONS)))
        self.name = name
        self.defaults = defaults

    def __repr__(self):
        return "<pgq.Task %s>" % self.name

    def delay(self, *args, **kwargs):
        """Enqueue with the given arguments: ``delay(user_id=1)`` sends ``{"user_id": 1}``."""
        return self.apply_async(args=args, kwargs=kwargs)

    def apply_async(self, args=None, kwargs=None, **options):
        """Enqueue with options: ``apply_async(kwargs={...}, countdown=10)``.

        A pgq job carries one JSON value: ``kwargs`` become a JSON object
        (what a Go handler's args struct decodes), positional ``args`` a JSON
        array; passing both is an error.
        """
        if args and kwargs:
            raise InvalidJob(
                "pgq: pass args or kwargs, not both: a pgq job carries one JSON value "
                "(kwargs become an object, args an array)"
            )
        if kwargs:
            payload = dict(kwargs)
        elif args:
            payload = list(args)
        else:
            payload = {}
        merged = dict(self.defaults)
        merged.update(options)
        return enqueue(self.name, payload, **merged)

    def AsyncResult(self, job_id, **kwargs):  # noqa: N802 - Celery's name
        """A handle to the result of one of this task's jobs."""
        kwargs.setdefault("connection", self.defaults.get("connection"))
        kwargs.setdefault("schema", self.defaults.get("schema"))
        return AsyncResult(job_id, task=self.name, **kwargs)


def task(name, **defaults):
    """Return a Task for the given name; see Task."""
    return Task(name, **defaults)


class AsyncResult:
    """A handle to one job's outcome (Celery's AsyncResult).

    Every property reads the job as it is now; an unknown id raises
    JobNotFound (never PENDING forever). ``connection`` and ``schema``
    default as in enqueue.
    """

    def __init__(self, id, connection=None, schema=None, task=None):  # noqa: A002 - Celery's name
        if isinstance(id, bool) or not isinstance(id, numbers.Integral):
            try:
                id = int(id)
            except (TypeError, ValueError):
                raise InvalidJob("pgq: a job id is an integer, not %r" % (id,)) from None
        self.id = int(id)
        self._connection = connection
        self.schema = _db.resolve_schema(schema)
        self.task = task

    def __repr__(self):
        return "<AsyncResult %d>" % self.id

    def __eq__(self, other):
        return isinstance(other, AsyncResult) and other.id == self.id and other.schema == self.schema

    def __hash__(self):
        return hash((self.id, self.schema))

    @property
    def connection(self):
        return _db.resolve_connection(self._connection)

    def _job(self):
        rows = _db.execute(
            self.connection,
            'SELECT task, state, result::text, error, traceback FROM "%s".result(%%s)' % self.schema,
            [self.id],
        )
        if not rows:
            raise JobNotFound("pgq: job %d not found in schema %s" % (self.id, self.schema))
        task, state, result, error, traceback = rows[0]
        self.task = task
        return {
            "task": task,
            "state": state,
            "result": None if result is None else json.loads(result),
            "error": error or "",
            "traceback": traceback or "",
        }

    @property
    def state(self):
        """The job's state in Celery's words: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED."""
        return celery_state(self._job()["state"])

    status = state

    def ready(self):
        """Whether the job has finished (succeeded, failed or was revoked)."""
        return self._job()["state"] in FINISHED_STATES

    def successful(self):
        """Whether the job succeeded."""
        return self._job()["state"] == "succeeded"

    def failed(self):
        """Whether the job failed for good."""
        return self._job()["state"] == "failed"

    @property
    def result(self):
        """The handler's result once it succeeded; the JobError once it
        failed or was revoked; None while it has not finished (Celery's)."""
        job = self._job()
        if job["state"] == "succeeded":
            return job["result"]
        if job["state"] in FINISHED_STATES:
            return self._error(job)
        return None

    info = result

    @property
    def traceback(self):
        """The last recorded error's stack or traceback, or None."""
        return self._job()["traceback"] or None

    def _error(self, job):
        cls = JobRevoked if job["state"] == "cancelled" else JobFailed
        return cls(self.id, job["task"], job["state"], job["error"], job["traceback"])

    def get(self, timeout=None, propagate=True, interval=RESULT_POLL_INTERVAL):
        """Wait until the job has finished and return its result.

        A failed job raises JobFailed, a revoked one JobRevoked (both
        JobError, carrying the error and traceback) unless propagate is
        False, when the exception is returned instead. Waiting longer than
        timeout seconds raises pgq.TimeoutError (a TimeoutError).

        It listens on "<schema>.results" when the connection is in
        autocommit mode and outside a transaction (Django's default outside
        atomic blocks), and looks at the job every ``interval`` seconds as a
        fallback, so a lost notification or a connection that cannot listen
        only makes it slower. A job enqueued in a transaction that has not
        committed never finishes: commit before waiting.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = _Listener.open(self.connection, self.schema)
        try:
            while True:
                job = self._job()
                if job["state"] in FINISHED_STATES:
                    break
                wait = interval
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("pgq: job %d did not finish within %s seconds" % (self.id, timeout))
                    wait = min(wait, left)
                if listener is not None:
                    listener.wait(self.id, wait)
                else:
                    time.sleep(wait)
        finally:
            if listener is not None:
                listener.close()
        if job["state"] == "succeeded":
            return job["result"]
        err = self._error(job)
        if propagate:
            raise err
        return err

    def wait(self, timeout=None, propagate=True, interval=RESULT_POLL_INTERVAL):
        """Celery's alias of get."""
        return self.get(timeout=timeout, propagate=propagate, interval=interval)

    def revoke(self, terminate=False):
        """Revoke the job (``<schema>.revoke``, what Go's Client.Revoke does)
        on the handle's connection, so it is part of that transaction.

        A job that has not started (or waits for a retry) ends cancelled at
        once, with "revoked before it ran" in its errors, and waiting
        AsyncResults are told. A running job is marked so that it is never
        run again (no retry); with ``terminate=True`` its worker (Go or
        Python) is also told, at commit, to stop the handler, and the job
        ends cancelled. A finished job is left as it is. Returns the job's
        pgq state after the call ("running" for a running job until its
        worker stops it); an unknown id raises JobNotFound.
        """
        if not isinstance(terminate, bool):
            raise InvalidJob("pgq: terminate must be True or False")
        try:
            rows = _db.execute(
                self.connection,
                'SELECT state FROM "%s".revoke(%%s, %%s)' % self.schema,
                [self.id, terminate],
            )
        except Exception as exc:
            if _db.sqlstate(exc) == "P0002":
                raise JobNotFound("pgq: job %d not found in schema %s" % (self.id, self.schema)) from exc
            raise
        return rows[0][0]


class _Listener:
    """LISTEN on "<schema>.results" on a driver connection that is idle in autocommit."""

    def __init__(self, raw, channel):
        self.raw = raw
        self.channel = channel

    @classmethod
    def open(cls, connection, schema):
        try:
            raw = _db.raw_connection(connection)
        except Exception:
            return None
        if not _db.idle_autocommit(raw):
            return None
        channel = "%s.results" % schema
        if not hasattr(raw, "notifies"):
            return None
        cur = raw.cursor()
        try:
            cur.execute('LISTEN "%s"' % channel)
        finally:
            cur.close()
        return cls(raw, channel)

    def _mine(self, notifies, job_id):
        hit = False
        for n in notifies:
            if n.channel == self.channel and str(job_id) in n.payload.split(","):
                hit = True
        return hit

    def wait(self, job_id, seconds):
        raw = self.raw
        if isinstance(getattr(raw, "notifies", None), list):  # psycopg2
            # Whatever arrived, the caller looks at the job again; other
            # channels' notifications stay for their owner.
            if select.select([raw], [], [], seconds)[0]:
                raw.poll()
                raw.notifies[:] = [n for n in raw.notifies if n.channel != self.channel]
            return
        try:  # psycopg >= 3.2
            for n in raw.notifies(timeout=seconds):
                if self._mine([n], job_id):
                    return
        except TypeError:  # psycopg 3.0/3.1: no timeout; poll instead
            time.sleep(seconds)

    def close(self):
        try:
            cur = self.raw.cursor()
            try:
                cur.execute('UNLISTEN "%s"' % self.channel)
            finally:
                cur.close()
        except Exception:
            pass
