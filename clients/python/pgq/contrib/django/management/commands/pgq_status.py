"""manage.py pgq_status: job counts per queue and state."""

import json

from django.core.management.base import BaseCommand
from django.db import connections

from pgq import _db

STATES = ("scheduled", "available", "running", "retrying", "succeeded", "failed", "cancelled")


class Command(BaseCommand):
    help = "Print pgq's job counts per queue and state (from <PGQ_SCHEMA>.queue_stats)."

    def add_arguments(self, parser):
        parser.add_argument("--schema", help="pgq schema (default: PGQ_SCHEMA, else pgq)")
        parser.add_argument("--database", default="default", help="Django database alias")
        parser.add_argument("--json", action="store_true", help="print JSON: {queue: {state: count}}")

    def handle(self, *args, **opts):
        schema = _db.resolve_schema(opts["schema"])
        rows = _db.execute(
            connections[opts["database"]],
            'SELECT queue, state, count FROM "%s".queue_stats ORDER BY queue, state' % schema,
            [],
        )
        counts = {}
        for queue, state, count in rows:
            counts.setdefault(queue, {})[state] = int(count)
        if opts["json"]:
            self.stdout.write(json.dumps(counts, sort_keys=True))
            return
        if not counts:
            self.stdout.write("no jobs in schema %s" % schema)
            return
        width = max(len("QUEUE"), *(len(q) for q in counts))
        self.stdout.write("QUEUE".ljust(width) + "".join(s.upper().rjust(11) for s in STATES))
        for queue in sorted(counts):
            self.stdout.write(queue.ljust(width) + "".join(str(counts[queue].get(s, 0)).rjust(11) for s in STATES))
