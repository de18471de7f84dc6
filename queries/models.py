"""DP query jobs and the archive of real queries."""

import uuid

from django.conf import settings
from django.db import models


class Job(models.Model):
    """One submitted DP request, from 202 Accepted on; the client reads a complete job's result once."""

    class Kind(models.TextChoices):
        QUERY = "query", "Query on the private data"
        DUMMY = "dummy", "Query on dummy data"
        COST = "cost", "Cost estimate"

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    uid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="jobs")
    library = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True)
    request = models.JSONField()
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(default=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker starts the job: a job still in progress after it lost its worker.
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The cost of a real query, set as it starts reading private data: from then on it is charged
    # whatever happens, even if its worker dies.
    private_run_cost = models.JSONField(null=True, blank=True)
    # Set when the owner has read a complete job: it stays listed for admins, gone for the client.
    collected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.library} {self.kind} {self.uid} ({self.status})"


class QueryArchive(models.Model):
    """A real query and its answer, kept for the researcher's history and for audit (spec §2.6)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="archived_queries"
    )
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.SET_NULL, null=True, related_name="archives")
    user_name = models.CharField(max_length=150, db_index=True)
    dataset_name = models.CharField(max_length=255, db_index=True)
    dp_library = models.CharField(max_length=32, db_index=True)
    job_uid = models.UUIDField(unique=True)
    client_input = models.JSONField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "query archives"

    def __str__(self) -> str:
        return f"{self.dp_library} query by {self.user_name} on {self.dataset_name} at {self.created_at:%Y-%m-%d %H:%M}"
