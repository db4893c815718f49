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

#: The reason recorded in a job's errors when it is revoked before it ran (as Go's).
REVOKE_REASON_WAITING = "revoked before it ran"

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
    into its args struct by JSON field names. ``countdown`` (seconds or a
    timedelta) and ``eta`` (an aware datetime) delay the job, ``expires``
    (seconds from now, or an aware datetime) discards it if it has not
    started by then. Options left None take the queue's defaults, then pgq's.

    Bad input raises InvalidJob before anything is sent; the database's own
    checks (SQLSTATE 22023) raise it too.
    """
    if unknown:
        raise InvalidJob(
            "pgq: unknown option %s; known options: %s"
            % (", ".join(repr(k) for k in sorted(unknown)), ", ".join(_OPTIONS))
        )
    sql_args = [_check_name(task, "task", TASK_RE, TASK_MAX, "_ . : / -")]
    named = []

    def add(name, cast, value):
        named.append("%s => %%s::%s" % (name, cast))
        sql_args.append(value)

    args_json = _to_json({} if args is None else args, "args")
    sql_args.append(args_json)

    if queue is None:
        queue = _db.default_queue()
    if queue is not None:
        add("queue", "text", _check_name(queue, "queue", QUEUE_RE, QUEUE_MAX, "_ . : -"))
    if countdown is not None and eta is not None:
        raise InvalidJob("pgq: set eta or countdown, not both")
    countdown = _seconds(countdown, "countdown")
    if countdown is not None:
        named.append("countdown => make_interval(secs => %s::double precision)")
        sql_args.append(countdown)
    eta = _timestamp(eta, "eta")
    if eta is not None:
        add("run_at", "timestamptz", eta)
    if expires is not None:
        if isinstance(expires, datetime.datetime):
            add("expires_at", "timestamptz", _timestamp(expires, "expires"))
        else:
            named.append("expires_at => now() + make_interval(secs => %s::double precision)")
            sql_args.append(_seconds(expires, "expires"))
    priority = _check_int(priority, "priority", 0, 9)
    if priority is not None:
        add("priority", "integer", priority)
    max_retries = _check_int(max_retries, "max_retries", 0)
    if max_retries is not None:
        add("max_retries", "integer", max_retries)
    for name, value in (("retry_delay", retry_delay), ("time_limit", time_limit), ("soft_time_limit", soft_time_limit)):
        value = _seconds(value, name, positive=True)
        if value is not None:
            named.append("%s => make_interval(secs => %%s::double precision)" % name)
            sql_args.append(value)
    if not isinstance(ignore_result, bool):
        raise InvalidJob("pgq: ignore_result must be True or False")
    if ignore_result:
        add("ignore_result", "boolean", True)
    if unique_key is not None:
        if not isinstance(unique_key, str) or not 1 <= len(unique_key) <= UNIQUE_KEY_MAX:
            raise InvalidJob("pgq: unique_key must be 1 to 255 characters")
        if "\x00" in unique_key:
            raise InvalidJob("pgq: unique_key cannot contain a NUL character")
        add("unique_key", "text", unique_key)
    if headers is not None:
        if not isinstance(headers, dict):
            raise InvalidJob("pgq: headers must be a dict (a JSON object), not %s" % type(headers).__name__)
        add("meta", "jsonb", _to_json(headers, "headers"))

    schema = _db.resolve_schema(schema)
    connection = _db.resolve_connection(connection)
    sql = 'SELECT "%s".enqueue(%s)' % (schema, ", ".join(["%s", "%s::jsonb"] + named))
    rows = _db.execute(connection, sql, sql_args)
    return AsyncResult(rows[0][0], connection=connection, schema=schema, task=task)


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
            'SELECT task, state, result::text, errors::text FROM "%s".jobs WHERE id = %%s' % self.schema,
            [self.id],
        )
        if not rows:
            raise JobNotFound("pgq: job %d not found in schema %s" % (self.id, self.schema))
        task, state, result, errors = rows[0]
        self.task = task
        return {
            "task": task,
            "state": state,
            "result": None if result is None else json.loads(result),
            "errors": json.loads(errors) if errors else [],
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
        errors = self._job()["errors"]
        return (errors[-1].get("stack") or None) if errors else None

    def _error(self, job):
        last = job["errors"][-1] if job["errors"] else {}
        cls = JobRevoked if job["state"] == "cancelled" else JobFailed
        return cls(self.id, job["task"], job["state"], last.get("error", ""), last.get("stack", ""))

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
        """Revoke the job on the handle's connection (part of its transaction).

        A job that has not started (or waits for a retry) ends cancelled at
        once, with "revoked before it ran" in its errors, and waiting
        AsyncResults are told. A running job is marked so that it is never
        run again (no retry), but it runs to its end: terminating a running
        handler from Python is not supported yet (use Go's Client.Revoke or
        ``pgq revoke --terminate``). A finished job is left as it is.
        Returns the job's pgq state after the call; an unknown id raises
        JobNotFound.
        """
        if terminate:
            raise NotImplementedError(
                "pgq: revoke(terminate=True) is not supported from Python yet; "
                "use `pgq revoke --terminate` or Go's Client.Revoke"
            )
        s = self.schema
        conn = self.connection
        for _ in range(3):
            rows = _db.execute(
                conn,
                'UPDATE "%s".jobs SET state = \'cancelled\', finished_at = now(), revoked_at = now(), '
                "errors = errors || jsonb_build_array(jsonb_build_object("
                "'attempt', attempt, 'at', now(), 'error', %%s::text)) "
                "WHERE id = %%s AND state IN ('scheduled', 'available', 'retrying') RETURNING id" % s,
                [REVOKE_REASON_WAITING, self.id],
            )
            if rows:
                _db.execute(conn, "SELECT pg_notify(%s, %s)", ["%s.results" % s, str(self.id)])
                return "cancelled"
            rows = _db.execute(
                conn,
                'UPDATE "%s".jobs SET revoked_at = coalesce(revoked_at, now()) '
                "WHERE id = %%s AND state = 'running' RETURNING id" % s,
                [self.id],
            )
            if rows:
                return "running"
            state = self._job()["state"]
            if state in FINISHED_STATES:
                return state
            # It moved between the statements (started, or went back to wait): again.
        return self._job()["state"]


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
