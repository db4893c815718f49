"""Exceptions raised by the pgq client."""

import builtins


class PgqError(Exception):
    """Base class of every exception pgq raises."""


class InvalidJob(PgqError, ValueError):
    """The job was refused before anything was written.

    Raised for bad input found in Python (arguments that are not JSON, an
    unknown option, an invalid task or queue name, a negative countdown) and
    for the same checks failing inside the database (SQLSTATE 22023 from
    ``pgq.enqueue``); the message says what is wrong.

    A refusal by the database aborts the caller's transaction, as any SQL
    error does; the checks made in Python come first so that this is rare.
    """


class JobNotFound(PgqError, LookupError):
    """No job has the given id (it was never committed, or was deleted)."""


class JobError(PgqError):
    """A job ended without a result: ``AsyncResult.get`` raises it.

    Attributes: ``job_id``, ``task``, ``state`` (pgq's word: ``failed`` or
    ``cancelled``), ``error`` (the last error recorded, "" if none) and
    ``traceback`` (that error's stack or traceback, "" if the worker kept
    none).
    """

    def __init__(self, job_id, task, state, error="", traceback=""):
        self.job_id = job_id
        self.task = task
        self.state = state
        self.error = error or ""
        self.traceback = traceback or ""
        super().__init__("job %d (%s) %s: %s" % (job_id, task, state, self.error or state))


class JobFailed(JobError):
    """The job failed for good: its retries are used up or the error was permanent."""


class JobRevoked(JobError):
    """The job was revoked (cancelled) before it succeeded."""


class TimeoutError(PgqError, builtins.TimeoutError):  # noqa: A001 - Celery's name
    """``AsyncResult.get`` waited longer than its timeout; the job goes on."""


# Control values for handlers run by the Python worker (pgq.worker). A
# handler raises one of them to tell the worker what to do with its job
# instead of applying the task's retry policy, as a Go handler returns
# worker.Retry, worker.Snooze or worker.Permanent.


class Retry(PgqError):
    """Raise to run the job again after ``countdown`` seconds (Celery's
    ``self.retry``, Go's ``worker.Retry``). The attempt counts against the
    job's retries: when none is left the job fails, with ``exc`` (or this
    exception) as its error.
    """

    def __init__(self, countdown=0, exc=None):
        self.countdown = max(float(countdown or 0), 0.0)
        self.exc = exc
        super().__init__(countdown, exc)

    def __str__(self):
        from ._duration import go_duration

        if isinstance(self.exc, BaseException):
            return "retry in %s: %s" % (go_duration(self.countdown), describe_exception(self.exc))
        if self.exc is not None:
            return "retry in %s: %s" % (go_duration(self.countdown), self.exc)
        return "retry requested by the handler, in %s" % go_duration(self.countdown)


class Snooze(PgqError):
    """Raise to put the job back to run after ``countdown`` seconds without
    using up an attempt or recording an error (Go's ``worker.Snooze``): for
    "not yet", not for failures."""

    def __init__(self, countdown):
        self.countdown = max(float(countdown or 0), 0.0)
        super().__init__(countdown)


class Permanent(PgqError):
    """Raise (or raise ``Permanent(exc)``) to fail the job at once, whatever
    retries it has left (Go's ``worker.Permanent``; Celery's ``Reject``
    without requeue)."""

    def __init__(self, exc=None):
        self.exc = exc
        super().__init__(exc)

    def __str__(self):
        if self.exc is None:
            return "permanent failure"
        if isinstance(self.exc, BaseException):
            return describe_exception(self.exc)
        return str(self.exc)


class SoftTimeLimitExceeded(PgqError):
    """Raised inside a handler when its job's soft time limit passes
    (Celery's name): catch it to clean up before the hard limit."""


class TimeLimitExceeded(PgqError):
    """Raised inside a handler when its job's hard time limit passes; the
    attempt fails with "hard time limit of ... exceeded"."""


class Terminated(PgqError):
    """Raised inside a handler whose job was revoked with terminate; the job
    ends cancelled and is not retried."""


class WorkerShutdown(PgqError):
    """Raised inside a handler still running when the worker's shutdown
    timeout passes; the job goes back to its queue, attempt not counted."""


def describe_exception(exc):
    """An exception as a job's error message: "ValueError: bad month"."""
    name = type(exc).__name__
    text = str(exc)
    return "%s: %s" % (name, text) if text else name
