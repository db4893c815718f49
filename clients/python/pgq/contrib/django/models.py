"""An unmanaged model over pgq's jobs table, for the admin and for queries.

Django never creates, alters or migrates this table: pgq's migrations own it
(``pgq migrate up``). Write jobs with ``pgq.enqueue``, not ``Job.objects.create``.
"""

from django.db import models

from pgq import _db
from pgq.client import celery_state

STATES = [
    (s, s)
    for s in ("scheduled", "available", "running", "retrying", "succeeded", "failed", "cancelled")
]


class Job(models.Model):
    """One row of <PGQ_SCHEMA>.jobs."""

    id = models.BigAutoField(primary_key=True)
    task = models.TextField()
    queue = models.TextField()
    state = models.TextField(choices=STATES)
    priority = models.SmallIntegerField()
    args = models.JSONField()
    meta = models.JSONField()
    attempt = models.IntegerField()
    max_retries = models.IntegerField()
    ignore_result = models.BooleanField()
    unique_key = models.TextField(null=True)
    run_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    worker_id = models.TextField(null=True)
    result = models.JSONField(null=True)
    errors = models.JSONField()

    class Meta:
        managed = False
        # A quoted name is used as it is: "schema"."jobs".
        db_table = '"%s"."jobs"' % _db.resolve_schema(None)
        ordering = ["-id"]
        verbose_name = "job"

    def __str__(self):
        return "%d %s (%s)" % (self.id, self.task, self.state)

    @property
    def celery_state(self):
        """The state in Celery's words (PENDING, STARTED, …)."""
        return celery_state(self.state)

    @property
    def last_error(self):
        """The last recorded error message, or ""."""
        return self.errors[-1].get("error", "") if self.errors else ""
