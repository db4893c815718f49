"""pgq without Django's connection: a plain psycopg2 connection, and input
checks that run before anything is sent."""

import datetime
import math
import time
import unittest

import psycopg2

import pgq
from tests.helpers import SCHEMA, URL, job_count


class PlainConnection(unittest.TestCase):
    def setUp(self):
        self.conn = psycopg2.connect(URL)
        self.addCleanup(self.conn.close)

    def test_rollback_and_commit(self):
        before = job_count("orders.confirm")
        result = pgq.enqueue("orders.confirm", {"order_id": 7}, queue="default", connection=self.conn, schema=SCHEMA)
        self.conn.rollback()
        self.assertEqual(job_count("orders.confirm"), before)
        with self.assertRaises(pgq.JobNotFound):
            result.state
        self.conn.rollback()

        result = pgq.enqueue("orders.confirm", {"order_id": 7}, queue="default", connection=self.conn, schema=SCHEMA)
        self.conn.commit()
        # Not in autocommit: get polls instead of listening.
        self.assertEqual(result.get(timeout=10, interval=0.1), {"confirmed": 7})

    def test_listen_in_autocommit(self):
        self.conn.autocommit = True
        result = pgq.task("orders.confirm", connection=self.conn, schema=SCHEMA, queue="default").delay(order_id=8)
        self.assertEqual(result.get(timeout=10, interval=30), {"confirmed": 8}, "woken by the notification, not the poll")

    def test_schema_name_is_checked(self):
        for bad in ['pgq"; DROP TABLE x; --', "Pgq", "1pgq", "a" * 41, "", 5]:
            with self.assertRaises(pgq.InvalidJob):
                pgq.enqueue("orders.confirm", connection=self.conn, schema=bad)


class BadInput(unittest.TestCase):
    """Each case raises InvalidJob before the connection is used at all."""

    class NoConnection:
        def cursor(self):
            raise AssertionError("the connection was used")

    def test_cases(self):
        aware = datetime.datetime.now(datetime.timezone.utc)
        cases = [
            (("orders.confirm", object()), {}, "not JSON-serialisable"),
            (("orders.confirm", {"x": math.nan}), {}, "not JSON-serialisable"),
            (("orders.confirm", {"x": "a\x00b"}), {}, "NUL"),
            (("orders.confirm", {"x\x00": 1}), {}, "NUL"),
            (("orders.confirm", {"x": "\ud800"}), {}, "surrogate"),
            (("orders.confirm",), {"headers": {"h": {1, 2}}}, "headers are not JSON-serialisable"),
            (("orders.confirm",), {"headers": [1]}, "headers must be a dict"),
            (("orders.confirm",), {"countdwn": 5}, "unknown option 'countdwn'"),
            (("",), {}, "task name is empty"),
            (("send email",), {}, "invalid task name 'send email'"),
            ((42,), {}, "task name must be a string"),
            (("orders.confirm",), {"queue": "a b"}, "invalid queue name 'a b'"),
            (("orders.confirm",), {"queue": "a/b"}, "invalid queue name"),
            (("orders.confirm",), {"countdown": -1}, "countdown cannot be negative"),
            (("orders.confirm",), {"countdown": datetime.timedelta(seconds=-1)}, "countdown cannot be negative"),
            (("orders.confirm",), {"countdown": "10"}, "countdown must be a number"),
            (("orders.confirm",), {"countdown": 1, "eta": aware}, "not both"),
            (("orders.confirm",), {"eta": datetime.datetime.now()}, "timezone-aware"),
            (("orders.confirm",), {"priority": 10}, "priority 10 is out of range"),
            (("orders.confirm",), {"priority": True}, "priority must be an integer"),
            (("orders.confirm",), {"max_retries": -1}, "max_retries cannot be negative"),
            (("orders.confirm",), {"time_limit": 0}, "time_limit must be positive"),
            (("orders.confirm",), {"unique_key": ""}, "unique_key must be 1 to 255"),
        ]
        before = job_count()
        for args, kwargs, message in cases:
            with self.subTest(args=args, kwargs=kwargs):
                with self.assertRaises(pgq.InvalidJob) as caught:
                    pgq.enqueue(*args, connection=self.NoConnection(), schema=SCHEMA, **kwargs)
                self.assertIsInstance(caught.exception, ValueError)
                self.assertIn(message, str(caught.exception))
        self.assertEqual(job_count(), before)

    def test_task_object(self):
        with self.assertRaises(pgq.InvalidJob):
            pgq.task("bad name")
        with self.assertRaises(pgq.InvalidJob):
            pgq.task("orders.confirm", queu="x")
        t = pgq.task("orders.confirm", connection=self.NoConnection(), schema=SCHEMA)
        with self.assertRaisesRegex(pgq.InvalidJob, "args or kwargs, not both"):
            t.apply_async(args=[1], kwargs={"a": 1})
        with self.assertRaisesRegex(pgq.InvalidJob, "unknown option 'cuntdown'"):
            t.apply_async(kwargs={"a": 1}, cuntdown=3)

    def test_celery_state_mapping(self):
        self.assertEqual(
            [pgq.celery_state(s) for s in ("scheduled", "available", "running", "retrying", "succeeded", "failed", "cancelled")],
            ["PENDING", "PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"],
        )


class EnqueueMany(unittest.TestCase):
    def setUp(self):
        self.conn = psycopg2.connect(URL)
        self.addCleanup(self.conn.close)

    def test_commit_runs_them_on_the_go_worker(self):
        results = pgq.enqueue_many(
            [
                {"task": "orders.confirm", "args": {"order_id": 31}, "queue": "default"},
                {"task": "orders.confirm", "args": {"order_id": 32}, "queue": "default", "priority": 9, "max_retries": 0},
                {"task": "pgq.echo", "args": [1, "two"], "queue": "default", "headers": {"trace": "t"}},
            ],
            connection=self.conn,
            schema=SCHEMA,
        )
        self.conn.commit()
        self.assertEqual([r.task for r in results], ["orders.confirm", "orders.confirm", "pgq.echo"])
        self.assertEqual(len({r.id for r in results}), 3)
        self.assertEqual(
            [r.get(timeout=10, interval=0.1) for r in results], [{"confirmed": 31}, {"confirmed": 32}, [1, "two"]]
        )
        self.assertEqual(pgq.enqueue_many([], connection=self.conn, schema=SCHEMA), [])

    def test_bad_job_names_its_index_and_nothing_is_written(self):
        before = job_count()
        cases = [
            ([{"task": "a"}, {"task": "send email"}], "jobs[1]: invalid task name 'send email'"),
            ([{"task": "a"}, {"task": "a", "countdwn": 3}], "jobs[1]: unknown option 'countdwn'"),
            ([{"task": "a", "args": {1, 2}}], "jobs[0]: args are not JSON-serialisable"),
            ([{"args": {}}], "jobs[0] has no task"),
            (["a"], "jobs[0] must be a dict"),
            ({"task": "a"}, "takes a list of dicts"),
        ]
        for jobs, message in cases:
            with self.subTest(jobs=jobs):
                with self.assertRaises(pgq.InvalidJob) as caught:
                    pgq.enqueue_many(jobs, connection=BadInput.NoConnection(), schema=SCHEMA)
                self.assertIn(message, str(caught.exception))
        self.assertEqual(job_count(), before)


class RevokeTerminate(unittest.TestCase):
    def test_terminate_a_running_job_on_the_go_worker(self):
        conn = psycopg2.connect(URL)
        self.addCleanup(conn.close)
        conn.autocommit = True
        result = pgq.enqueue("pgq.sleep", {"seconds": 600}, queue="default", connection=conn, schema=SCHEMA)
        deadline = time.monotonic() + 10
        while result.state != pgq.STARTED:
            self.assertLess(time.monotonic(), deadline, "the Go worker did not start the job")
            time.sleep(0.01)
        self.assertEqual(result.revoke(terminate=True), "running")
        with self.assertRaises(pgq.JobRevoked) as caught:
            result.get(timeout=10)
        self.assertEqual(caught.exception.error, "revoked: terminated while running")
        with self.assertRaises(pgq.JobNotFound):
            pgq.AsyncResult(2**62, connection=conn, schema=SCHEMA).revoke()
