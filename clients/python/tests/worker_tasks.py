"""Tasks the Python worker runs in the tests (tests/python_worker_test.go
starts ``python3 -m pgq worker -A tests.worker_tasks``)."""

import time

import pgq


@pgq.register("reports.build")
def build_report(month, rows=0):
    """Args {"month": "2026-11", "rows": 3}, the Go side's Report struct."""
    return {"month": month, "rows": rows, "file": "report-%s.csv" % month, "by": "python"}


@pgq.register("py.flaky", max_retries=2, retry_delay=0.05, bind=True)
def flaky(job):
    raise ValueError("flaky attempt %d" % job.attempt)


@pgq.register("py.retry", bind=True)
def retry_until_third(job):
    if job.attempt < 3:
        raise pgq.Retry(countdown=0.05, exc=ConnectionError("upstream busy"))
    return {"attempt": job.attempt}


@pgq.register("py.permanent")
def permanent():
    raise pgq.Permanent(KeyError("no such customer"))


def _busy_sleep(seconds):
    """Sleep in small steps, so that an interrupt (time limit, revoke,
    shutdown) lands within 50 ms."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)


@pgq.register("py.slow")
def slow(seconds):
    _busy_sleep(seconds)
    return {"slept": seconds}


@pgq.register("py.stubborn")
def stubborn(seconds):
    """One long C-level sleep: interrupts cannot land until it ends."""
    time.sleep(seconds)
    return {"slept": seconds}


@pgq.register("py.soft", bind=True)
def soft(job, seconds):
    try:
        _busy_sleep(seconds)
    except pgq.SoftTimeLimitExceeded:
        return {"soft_limit": True, "flag": job.soft_limit_exceeded()}
    return {"soft_limit": False}


@pgq.register("py.hang_first", bind=True)
def hang_first(job, seconds):
    """Hangs on its first attempt (the test kills the worker); later attempts succeed."""
    if job.attempt == 1:
        _busy_sleep(seconds)
    return {"attempt": job.attempt, "worker": job.worker_id}


_snoozed = set()


@pgq.register("py.snooze_once", bind=True)
def snooze_once(job):
    """Snoozes the first time this worker sees the job, then succeeds."""
    if job.id not in _snoozed:
        _snoozed.add(job.id)
        raise pgq.Snooze(0.1)
    return {"attempt": job.attempt}


@pgq.register("py.parent", bind=True)
def parent(job):
    """A workflow step: returns what the step before it produced."""
    return {"parent": job.parent_result()}
