"""Admin API routes (spec §1.6), named as the wire paths; admin scope only."""

from django.urls import path

from accounts.admin_api import UserDeleteApi
from budgets.admin_api import (
    DatasetBudgetApi,
    UserBudgetApi,
    UserDatasetAddApi,
    UserDatasetRevokeApi,
    UsersApi,
    UsersFileApi,
)
from datasets.admin_api import (
    DatasetAddApi,
    DatasetBulkApi,
    DatasetDetailApi,
    DatasetListApi,
    DatasetMetadataAdminApi,
)
from lomas.console.admin_api import CollectionDropApi
from queries.admin_api import UserArchiveApi

urlpatterns = [
    path("datasets", DatasetListApi.as_view(), name="admin_datasets"),
    path("users", UsersApi.as_view(), name="admin_users"),
    path("usersfile", UsersFileApi.as_view(), name="admin_usersfile"),
    path("users/<str:username>", UserDeleteApi.as_view(), name="admin_user"),
    path("users/<str:username>/archive", UserArchiveApi.as_view(), name="admin_user_archive"),
    path("users/<str:username>/dataset", UserDatasetAddApi.as_view(), name="admin_user_dataset"),
    path("users/<str:username>/dataset/del", UserDatasetRevokeApi.as_view(), name="admin_user_dataset_del"),
    path("users/<str:username>/dataset/budget", UserBudgetApi.as_view(), name="admin_user_dataset_budget"),
    path("collections/<str:collection_name>", CollectionDropApi.as_view(), name="admin_collection"),
    path("dataset/bulk", DatasetBulkApi.as_view(), name="admin_dataset_bulk"),
    path("dataset", DatasetAddApi.as_view(), name="admin_dataset_add"),
    path("dataset/<str:dataset_name>", DatasetDetailApi.as_view(), name="admin_dataset"),
    path("dataset/<str:dataset_name>/metadata", DatasetMetadataAdminApi.as_view(), name="admin_dataset_metadata"),
    path("dataset/<str:dataset_name>/budget", DatasetBudgetApi.as_view(), name="admin_dataset_budget"),
]
