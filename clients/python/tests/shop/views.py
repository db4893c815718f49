"""The application side of the tests: a view that creates an order and
enqueues its confirmation in one transaction."""

import json

from django.db import transaction
from django.http import JsonResponse

import pgq

from .models import Order

confirm_order = pgq.task("orders.confirm")


class Refused(Exception):
    """Raised inside the transaction to show that it rolls back whole."""


def place_order(customer, fail_after_enqueue=False):
    """Create an Order and enqueue orders.confirm for it, atomically."""
    with transaction.atomic():
        order = Order.objects.create(customer=customer)
        result = confirm_order.delay(order_id=order.id)
        if fail_after_enqueue:
            raise Refused(result.id)
    return order, result


def create_order(request):
    """POST {"customer": "..."} -> {"order_id": N, "job_id": M}."""
    body = json.loads(request.body or b"{}")
    order, result = place_order(body.get("customer", "anonymous"))
    return JsonResponse({"order_id": order.id, "job_id": result.id})
