"""Django integration: add "pgq.contrib.django" to INSTALLED_APPS.

Settings: PGQ_SCHEMA (default "pgq"), PGQ_DEFAULT_QUEUE (default: the SQL
default, "default"). The app gives a read-only admin for pgq's jobs and the
``manage.py pgq_status`` command. ``pgq.enqueue`` uses ``django.db.connection``
when no connection is passed, so jobs commit or roll back with
``transaction.atomic()``.
"""

default_app_config = "pgq.contrib.django.apps.PgqConfig"
