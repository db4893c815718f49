"""python3 -m pgq worker -Q QUEUES [-c N] -A MODULE ...: run a Python pgq worker.

The modules given with -A (Celery's --app) are imported first; their
@pgq.register decorators fill the registry the worker runs. The database is
--database-url, else $PGQ_DATABASE_URL, else $DATABASE_URL, else, when
DJANGO_SETTINGS_MODULE is set, Django's default database.
"""

import argparse
import importlib
import logging
import os
import sys


def _parser():
    p = argparse.ArgumentParser(prog="python3 -m pgq", description="pgq for Python")
    sub = p.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="run Python tasks registered with @pgq.register")
    w.add_argument("-Q", "--queues", default="default", help="queues to work on, comma-separated (default: default)")
    w.add_argument("-c", "--concurrency", type=int, default=None, help="jobs run at once (default 4)")
    w.add_argument("-A", "--app", "--import", dest="imports", action="append", default=[],
                   help="module to import for its @pgq.register tasks (repeat for several)")
    w.add_argument("--database-url", default=None, help="PostgreSQL URL (default $PGQ_DATABASE_URL, $DATABASE_URL, or Django's)")
    w.add_argument("--schema", default=None, help="pgq schema (default $PGQ_SCHEMA, Django's PGQ_SCHEMA, or pgq)")
    w.add_argument("--worker-id", default=None, help="name of this worker (default host-pid-random)")
    w.add_argument("--poll-interval", type=float, default=None, help="fallback claim period in seconds (default 1)")
    w.add_argument("--heartbeat-interval", type=float, default=None, help="seconds between heartbeats (default 5)")
    w.add_argument("--shutdown-timeout", type=float, default=None, help="seconds running jobs may finish after a signal (default 30)")
    w.add_argument("--cancel-grace", type=float, default=None,
                   help="seconds a handler has to stop after a limit or revoke before its slot is taken back (default 2)")
    w.add_argument("--burst", action="store_true", help="exit once the queues hold no runnable job")
    w.add_argument("--no-listen", action="store_true", help="find jobs by polling only (pgbouncer in transaction mode)")
    w.add_argument("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command != "worker":
        _parser().print_help()
        return 2
    logging.basicConfig(level=getattr(logging, args.loglevel.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    sys.path.insert(0, os.getcwd())
    from . import _db, worker

    connect = None
    url = args.database_url or os.environ.get("PGQ_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url and os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django

        django.setup()
        connect = _db.django_connector()
    elif not url:
        print("pgq worker: no database: pass --database-url or set PGQ_DATABASE_URL", file=sys.stderr)
        return 2
    for module in args.imports:
        importlib.import_module(module)
    options = {}
    for name in ("concurrency", "poll_interval", "heartbeat_interval", "shutdown_timeout", "cancel_grace"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    try:
        w = worker.Worker(
            dsn=url, connect=connect, queues=[q for q in args.queues.split(",") if q],
            schema=args.schema or os.environ.get("PGQ_SCHEMA") or None, worker_id=args.worker_id,
            burst=args.burst, listen=not args.no_listen, **options
        )
    except Exception as exc:
        print("pgq worker: %s" % exc, file=sys.stderr)
        return 2
    return w.run()


if __name__ == "__main__":
    sys.exit(main())
