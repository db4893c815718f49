from django.apps import AppConfig


class PgqConfig(AppConfig):
    """pgq's Django app (label "pgq")."""

    name = "pgq.contrib.django"
    label = "pgq"
    verbose_name = "pgq job queue"
    default_auto_field = "django.db.models.BigAutoField"
