"""Run the Python client's tests: /usr/bin/python3 clients/python/tests/run.py

Needs PGQ_PY_DATABASE_URL and PGQ_PY_SCHEMA (a database with pgq migrated
under that schema) and, for the tests that need a worker, a Go worker
running on queues "orders" and "default" (tests/python_django_test.go starts
examples/pyinterop). PGQ_PY_GO_JOB_ID, when set, is a job a Go program
enqueued (pgq.echo) whose result Python reads. Exits 0 when every test passes.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # clients/python


def main():
    sys.path.insert(0, ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.db import connection

    from tests.shop.models import Order

    # Plain unittest (not Django's runner): the tests need real commits that
    # a Go worker sees, in the database and schema the Go test prepared.
    with connection.schema_editor() as editor:
        editor.create_model(Order)
    try:
        suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=ROOT)
        result = unittest.TextTestRunner(verbosity=2).run(suite)
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Order)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
