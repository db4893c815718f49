"""pgq: enqueue jobs from Python onto pgq's PostgreSQL queue, Celery's way,
and run them in Python too.

Jobs are written with the SQL function ``<schema>.enqueue`` on your own
DB-API connection (psycopg2, psycopg 3, or Django's), so they are part of
your transaction. Go workers, or Python workers running functions
registered with ``@pgq.register`` (``python3 -m pgq worker``), run them.
See README.md.
"""

from .client import (
    FAILURE,
    PENDING,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
    AsyncResult,
    Task,
    celery_state,
    enqueue,
    enqueue_many,
    task,
)
from .errors import (
    InvalidJob,
    JobError,
    JobFailed,
    JobNotFound,
    JobRevoked,
    Permanent,
    PgqError,
    Retry,
    Snooze,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
    TimeoutError,
    WorkerShutdown,
)
from .worker import Job, Worker, register

__all__ = [
    "AsyncResult",
    "FAILURE",
    "InvalidJob",
    "Job",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "JobRevoked",
    "PENDING",
    "Permanent",
    "PgqError",
    "RETRY",
    "REVOKED",
    "Retry",
    "STARTED",
    "SUCCESS",
    "Snooze",
    "SoftTimeLimitExceeded",
    "Task",
    "Terminated",
    "TimeLimitExceeded",
    "TimeoutError",
    "Worker",
    "WorkerShutdown",
    "celery_state",
    "enqueue",
    "enqueue_many",
    "register",
    "task",
]

__version__ = "0.1.0"
