"""Django settings of the test project: the database and pgq schema come from
the environment (PGQ_PY_DATABASE_URL, PGQ_PY_SCHEMA), which the Go test
tests/python_django_test.go sets from a pgtest database."""

import os
from urllib.parse import urlsplit

URL = os.environ["PGQ_PY_DATABASE_URL"]
SCHEMA = os.environ["PGQ_PY_SCHEMA"]

SECRET_KEY = "pgq-python-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "pgq.contrib.django",
    "tests.shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.request",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        # Django wants NAME; the DSN carries the rest (host, port, user, sslmode).
        "NAME": urlsplit(URL).path.lstrip("/") or "postgres",
        # The shop's tables live in the test's own schema, next to pgq's.
        "OPTIONS": {"dsn": URL, "options": "-c search_path=%s" % SCHEMA},
    }
}

PGQ_SCHEMA = SCHEMA
PGQ_DEFAULT_QUEUE = "orders"
