"""Private datasets and their csvw-eo metadata."""

from django.db import models


class Dataset(models.Model):
    """A private dataset researchers query but never see.

    Data sits at a local path (relative paths are under LOMAS_DATA_DIR), an http(s)
    URL, an S3 object, or a PostgreSQL table. Keys and database URLs are never stored here:
    `s3_credentials_name` names an entry of the server's LOMAS_S3_CREDENTIALS setting and
    `sql_credentials_name` one of LOMAS_SQL_CREDENTIALS.
    """

    class Access(models.TextChoices):
        PATH = "PATH_DB", "Local path or URL"
        S3 = "S3_DB", "S3 object"
        SQL = "SQL_DB", "PostgreSQL table"

    name = models.CharField(max_length=255, unique=True)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.PATH)
    path = models.CharField(max_length=1024, blank=True, help_text="File path (CSV or parquet) or http(s) URL.")
    s3_endpoint_url = models.URLField(blank=True)
    s3_bucket = models.CharField(max_length=255, blank=True)
    s3_key = models.CharField(max_length=1024, blank=True)
    s3_credentials_name = models.CharField(max_length=255, blank=True)
    sql_credentials_name = models.CharField(max_length=255, blank=True)
    sql_table = models.CharField(max_length=255, blank=True, help_text="[schema.]table of a SQL_DB dataset.")
    # csvw-eo table metadata (JSON-LD form), validated by datasets.metadata on every write.
    metadata = models.JSONField()
    # Bumped whenever the data source or metadata changes: cached frames are keyed on it.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(access="PATH_DB") & ~models.Q(path=""))
                | (models.Q(access="S3_DB") & ~models.Q(s3_bucket="") & ~models.Q(s3_key=""))
                | (models.Q(access="SQL_DB") & ~models.Q(sql_credentials_name="") & ~models.Q(sql_table="")),
                name="dataset_access_complete",
            )
        ]

    def __str__(self) -> str:
        return self.name
