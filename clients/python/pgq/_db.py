"""Connections, schema names and database errors (internal)."""

import re

from .errors import InvalidJob, PgqError

SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
DEFAULT_SCHEMA = "pgq"


def _django_settings():
    """Django's settings when Django is installed and configured, else None."""
    try:
        from django.conf import settings
    except ImportError:
        return None
    try:
        if not settings.configured:
            return None
    except Exception:  # pragma: no cover - settings that fail to load
        return None
    return settings


def resolve_schema(schema):
    """The schema to use, checked: the argument, else PGQ_SCHEMA, else "pgq".

    The schema name is inlined into SQL (as a quoted identifier), so it must
    match ^[a-z_][a-z0-9_]{0,39}$ (the names ``pgq migrate --schema`` accepts).
    """
    if schema is None:
        settings = _django_settings()
        schema = getattr(settings, "PGQ_SCHEMA", None) if settings is not None else None
        if schema is None:
            schema = DEFAULT_SCHEMA
    if not isinstance(schema, str) or not SCHEMA_RE.match(schema):
        raise InvalidJob(
            "pgq: invalid schema name %r: use 1 to 40 lower-case letters, digits and _, "
            "not starting with a digit" % (schema,)
        )
    return schema


def default_queue():
    """PGQ_DEFAULT_QUEUE from Django's settings, or None (the SQL default)."""
    settings = _django_settings()
    if settings is None:
        return None
    return getattr(settings, "PGQ_DEFAULT_QUEUE", None)


def resolve_connection(connection):
    """The connection to use: the argument, else Django's default connection."""
    if connection is not None:
        return connection
    if _django_settings() is not None:
        from django.db import connection as django_connection

        return django_connection
    raise PgqError(
        "pgq: no database connection: pass connection= (a DB-API connection such as "
        "psycopg2's or psycopg's), or configure Django"
    )


def sqlstate(exc):
    """The SQLSTATE of a database error (psycopg2, psycopg 3, or Django's wrapper of either)."""
    seen = 0
    while exc is not None and seen < 5:
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if code:
            return code
        exc = exc.__cause__
        seen += 1
    return None


def primary_message(exc):
    """The server's message of a database error, without psycopg2's DETAIL/CONTEXT lines."""
    cur = exc
    for _ in range(5):
        if cur is None:
            break
        diag = getattr(cur, "diag", None)
        msg = getattr(diag, "message_primary", None) if diag is not None else None
        if msg:
            return msg
        cur = cur.__cause__
    return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


def execute(connection, sql, params):
    """Run one statement on the connection and return all rows."""
    cur = connection.cursor()
    try:
        try:
            cur.execute(sql, params)
        except Exception as exc:
            if sqlstate(exc) == "22023":
                raise InvalidJob(primary_message(exc)) from exc
            raise
        if cur.description is None:
            return []
        return cur.fetchall()
    finally:
        cur.close()


def raw_connection(connection):
    """The driver's own connection behind a Django wrapper (or the argument)."""
    if hasattr(connection, "ensure_connection") and hasattr(connection, "in_atomic_block"):
        connection.ensure_connection()
        return connection.connection
    return connection


def idle_autocommit(raw):
    """Whether the driver connection is in autocommit mode and not inside a
    transaction, the only state in which LISTEN takes effect at once and
    notifications arrive while we wait."""
    if not getattr(raw, "autocommit", False):
        return False
    status = None
    if hasattr(raw, "get_transaction_status"):  # psycopg2
        status = raw.get_transaction_status()
    else:
        info = getattr(raw, "info", None)  # psycopg 3
        if info is not None and hasattr(info, "transaction_status"):
            status = int(info.transaction_status)
    return status == 0  # IDLE in both drivers


def connector(dsn):
    """A function that opens a new connection to dsn with the installed
    driver: psycopg2 if present, else psycopg 3."""
    try:
        import psycopg2
    except ImportError:
        psycopg2 = None
    if psycopg2 is not None:
        return lambda: psycopg2.connect(dsn)
    try:
        import psycopg
    except ImportError:
        raise PgqError("pgq: no PostgreSQL driver: install psycopg2 (Debian: python3-psycopg2) or psycopg") from None
    return lambda: psycopg.connect(dsn)


def django_connector(alias="default"):
    """A function that opens a new driver connection with the settings of a
    Django database (for the worker, which needs connections of its own)."""
    from django.db import connections

    wrapper = connections[alias]

    def connect():
        return wrapper.get_new_connection(wrapper.get_connection_params())

    return connect
