"""A read-only admin for pgq's jobs: list, filter, search and inspect."""

from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "queue", "state", "priority", "attempt", "run_at", "finished_at", "last_error")
    list_filter = ("state", "queue")
    search_fields = ("task", "unique_key")
    ordering = ("-id",)
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
