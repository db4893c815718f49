import os

from django.db import connection

SCHEMA = os.environ["PGQ_PY_SCHEMA"]
URL = os.environ["PGQ_PY_DATABASE_URL"]


def job_count(task=None):
    """Jobs in the test schema (of one task), read on Django's connection."""
    with connection.cursor() as cur:
        if task is None:
            cur.execute('SELECT count(*) FROM "%s".jobs' % SCHEMA)
        else:
            cur.execute('SELECT count(*) FROM "%s".jobs WHERE task = %%s' % SCHEMA, [task])
        return cur.fetchone()[0]


def job_row(job_id):
    with connection.cursor() as cur:
        cur.execute(
            'SELECT task, queue, state, priority, max_retries, args::text, meta::text, unique_key, '
            "run_at > now() + interval '30 seconds' FROM \"%s\".jobs WHERE id = %%s" % SCHEMA,
            [job_id],
        )
        return cur.fetchone()
