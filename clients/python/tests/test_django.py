"""pgq with Django: transactional enqueue, a Go worker, results, admin and
the pgq_status command."""

import io
import json
import os
import unittest

from django.core.management import call_command
from django.db import connection, transaction
from django.test import RequestFactory

import pgq
from pgq.contrib.django.admin import JobAdmin
from pgq.contrib.django.models import Job
from tests.helpers import SCHEMA, job_count, job_row
from tests.shop.models import Order
from tests.shop.views import Refused, create_order, place_order


class TransactionalEnqueue(unittest.TestCase):
    def test_commit_lets_the_go_worker_confirm_the_order(self):
        order, result = place_order("ada")
        self.assertIsInstance(result, pgq.AsyncResult)
        self.assertEqual(result.get(timeout=10), {"confirmed": order.id})
        self.assertEqual(result.state, pgq.SUCCESS)
        self.assertTrue(result.ready())
        self.assertTrue(result.successful())
        self.assertFalse(result.failed())
        self.assertEqual(result.result, {"confirmed": order.id})
        # A fresh handle by id reads the same outcome (what a later request does).
        self.assertEqual(pgq.AsyncResult(result.id).get(timeout=10), {"confirmed": order.id})
        task, queue, state, *_ = job_row(result.id)
        self.assertEqual((task, queue, state), ("orders.confirm", "orders", "succeeded"))

    def test_exception_rolls_back_the_order_and_the_job(self):
        orders, jobs = Order.objects.count(), job_count("orders.confirm")
        with self.assertRaises(Refused) as caught:
            place_order("bob", fail_after_enqueue=True)
        job_id = caught.exception.args[0]
        self.assertEqual(Order.objects.count(), orders)
        self.assertEqual(job_count("orders.confirm"), jobs)
        with self.assertRaises(pgq.JobNotFound):
            pgq.AsyncResult(job_id).state

    def test_view(self):
        request = RequestFactory().post("/orders/", data=json.dumps({"customer": "cy"}), content_type="application/json")
        body = json.loads(create_order(request).content)
        self.assertTrue(Order.objects.filter(id=body["order_id"], customer="cy").exists())
        self.assertEqual(pgq.AsyncResult(body["job_id"]).get(timeout=10), {"confirmed": body["order_id"]})

    def test_bad_input_raises_and_the_transaction_goes_on(self):
        jobs = job_count()
        with transaction.atomic():
            order = Order.objects.create(customer="dee")
            with self.assertRaises(pgq.InvalidJob) as caught:
                pgq.enqueue("orders.confirm", {"order_id": {1, 2}})
            self.assertIn("not JSON-serialisable", str(caught.exception))
            with self.assertRaises(ValueError):  # InvalidJob is a ValueError
                pgq.enqueue("send email")
        # Python's checks sent nothing, so the transaction was not aborted.
        self.assertTrue(Order.objects.filter(id=order.id).exists())
        self.assertEqual(job_count(), jobs)

    def test_database_refusal_maps_to_invalid_job(self):
        jobs, orders = job_count(), Order.objects.count()
        with self.assertRaises(pgq.InvalidJob) as caught:
            with transaction.atomic():
                Order.objects.create(customer="eve")
                with connection.cursor() as cur:
                    cur.execute("SET LOCAL %s.max_payload_bytes = 64" % SCHEMA)
                pgq.enqueue("orders.confirm", {"note": "x" * 100})
        self.assertRegex(str(caught.exception), r"^pgq: payload of \d+ bytes is larger than the limit of 64 bytes$")
        self.assertIsNotNone(caught.exception.__cause__)
        self.assertEqual(job_count(), jobs)
        self.assertEqual(Order.objects.count(), orders)


class Results(unittest.TestCase):
    def test_failed_job_raises_job_failed_with_its_error(self):
        result = pgq.enqueue("pgq.fail", {"message": "card declined", "permanent": True})
        with self.assertRaises(pgq.JobFailed) as caught:
            result.get(timeout=10)
        err = caught.exception
        self.assertEqual((err.job_id, err.task, err.state), (result.id, "pgq.fail", "failed"))
        self.assertIn("card declined", err.error)
        self.assertEqual(result.state, pgq.FAILURE)
        self.assertTrue(result.failed())
        self.assertIsInstance(result.result, pgq.JobFailed)
        self.assertIsInstance(result.get(timeout=1, propagate=False), pgq.JobFailed)

    def test_revoke_a_waiting_job(self):
        result = pgq.enqueue("orders.confirm", {"order_id": 0}, countdown=3600)
        self.assertEqual(result.state, pgq.PENDING)
        self.assertEqual(result.revoke(), "cancelled")
        with self.assertRaises(pgq.JobRevoked) as caught:
            result.get(timeout=5)
        self.assertEqual(caught.exception.error, "revoked before it ran")
        self.assertEqual(result.state, pgq.REVOKED)
        self.assertEqual(result.revoke(), "cancelled")  # finished: left as it is

    def test_get_times_out(self):
        result = pgq.enqueue("orders.confirm", {"order_id": 0}, countdown=3600)
        with self.assertRaises(pgq.TimeoutError) as caught:
            result.get(timeout=0.3)
        self.assertIsInstance(caught.exception, TimeoutError)
        result.revoke()

    def test_unknown_job(self):
        with self.assertRaises(pgq.JobNotFound):
            pgq.AsyncResult(2**62).ready()

    @unittest.skipUnless(os.environ.get("PGQ_PY_GO_JOB_ID"), "no job enqueued by Go")
    def test_result_of_a_job_go_enqueued(self):
        result = pgq.AsyncResult(int(os.environ["PGQ_PY_GO_JOB_ID"]))
        self.assertEqual(result.get(timeout=10), {"from": "go", "items": [1, 2]})
        self.assertEqual(result.task, "pgq.echo")


class Options(unittest.TestCase):
    def test_options_reach_the_row(self):
        with transaction.atomic():
            result = pgq.task("orders.confirm", queue="bulk", priority=7).apply_async(
                kwargs={"order_id": 5}, countdown=600, max_retries=1, unique_key="order-5", headers={"trace": "t1"}
            )
            again = pgq.enqueue("orders.confirm", {"order_id": 5}, unique_key="order-5")
            self.assertEqual(again.id, result.id, "a duplicate unique_key gives the holder's id")
            row = job_row(result.id)
            transaction.set_rollback(True)
        task, queue, state, priority, max_retries, args, meta, unique_key, later = row
        self.assertEqual((task, queue, state, priority, max_retries), ("orders.confirm", "bulk", "scheduled", 7, 1))
        self.assertEqual(json.loads(args), {"order_id": 5})
        self.assertEqual(json.loads(meta), {"trace": "t1"})
        self.assertEqual(unique_key, "order-5")
        self.assertTrue(later)

    def test_positional_args_are_an_array(self):
        with transaction.atomic():
            result = pgq.task("orders.confirm").delay(1, "two")
            self.assertEqual(json.loads(job_row(result.id)[5]), [1, "two"])
            transaction.set_rollback(True)


class Admin(unittest.TestCase):
    def test_model_and_read_only_admin(self):
        result = pgq.enqueue("orders.confirm", {"order_id": 0}, countdown=3600, queue="admin")
        try:
            job = Job.objects.get(id=result.id)
            self.assertEqual((job.task, job.queue, job.state, job.args), ("orders.confirm", "admin", "scheduled", {"order_id": 0}))
            self.assertEqual(job.celery_state, "PENDING")
            from django.contrib import admin

            model_admin = admin.site._registry[Job]
            self.assertIsInstance(model_admin, JobAdmin)
            request = RequestFactory().get("/")
            self.assertFalse(model_admin.has_add_permission(request))
            self.assertFalse(model_admin.has_change_permission(request, job))
            self.assertFalse(model_admin.has_delete_permission(request, job))
        finally:
            result.revoke()

    def test_pgq_status(self):
        result = pgq.enqueue("orders.confirm", {"order_id": 0}, countdown=3600, queue="status")
        out = io.StringIO()
        call_command("pgq_status", "--json", stdout=out)
        counts = json.loads(out.getvalue())
        self.assertEqual(counts["status"], {"scheduled": 1})
        out = io.StringIO()
        call_command("pgq_status", stdout=out)
        self.assertRegex(out.getvalue(), r"(?m)^QUEUE\s+SCHEDULED\s+AVAILABLE")
        self.assertRegex(out.getvalue(), r"(?m)^status\s+1\s+0")
        result.revoke()
