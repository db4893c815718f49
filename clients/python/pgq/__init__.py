"""pgq: enqueue jobs from Python onto pgq's PostgreSQL queue, Celery's way.

Jobs are written with the SQL function ``<schema>.enqueue`` on your own
DB-API connection (psycopg2, psycopg 3, or Django's), so they are part of
your transaction. Go workers (or any pgq worker) run them. See README.md.
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
    task,
)
from .errors import (
    InvalidJob,
    JobError,
    JobFailed,
    JobNotFound,
    JobRevoked,
    PgqError,
    TimeoutError,
)

__all__ = [
    "AsyncResult",
    "FAILURE",
    "InvalidJob",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "JobRevoked",
    "PENDING",
    "PgqError",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "Task",
    "TimeoutError",
    "celery_state",
    "enqueue",
    "task",
]

__version__ = "0.1.0"
