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
