"""Records the admin page tests share."""

from typing import Any
from uuid import UUID

from queries.models import QueryArchive


def archive_query(user: Any, dataset: Any, job_uid: UUID) -> QueryArchive:
    """An archived OpenDP query of the user on the dataset, made by the job."""
    return QueryArchive.objects.create(
        user=user,
        dataset=dataset,
        user_name=user.username,
        dataset_name=dataset.name,
        dp_library="opendp",
        job_uid=job_uid,
        client_input={"dataset_name": dataset.name},
        response={"epsilon": 0.5},
    )
