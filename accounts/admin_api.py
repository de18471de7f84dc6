"""Admin API routes on users, their access and budgets, and collections (spec §1.6).

Mutations answer 200 with a null body, as the reference server does.
"""

from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.collections import user_records_from_collection, user_to_wire
from accounts.selectors import user_get_by_name, user_list
from accounts.services import user_add, user_delete
from budgets.services import budget_add_access, budget_change_initial, budget_revoke, user_collection_load
from datasets.selectors import dataset_get_by_name
from lomas.admin_views import AdminApi, null_response, request_flag, uploaded_file
from lomas.collections import collection_drop, collection_read_yaml
from lomas.requests import DatasetRequestSerializer, StrictCharField, parse_body
from queries.selectors import archive_list_by_user_name


class UsersApi(AdminApi):
    """GET /users: every user (no secrets). POST /users: add a user from `id.name` / `id.email` only."""

    class InputSerializer(serializers.Serializer):
        class IdSerializer(serializers.Serializer):
            name = StrictCharField()
            email = StrictCharField(allow_blank=True, required=False, default="")
            client_secret = StrictCharField(required=False, allow_null=True, default=None)

        id = IdSerializer()

    def get(self, request: Request) -> Response:
        return Response([user_to_wire(user) for user in user_list()])

    def post(self, request: Request) -> Response | JsonResponse:
        identity = parse_body(self.InputSerializer, request)["id"]
        user_add(actor=request.user, username=identity["name"], email=identity["email"])
        return null_response()


class UsersFileApi(AdminApi):
    """POST /usersfile: bulk-load a YAML user collection (`file`; `clean`, `overwrite`, `dry_run` flags).

    As in lomas 0.5 the file's users replace existing entries (`overwrite` defaults to true);
    a dry run answers the list of changes without writing anything.
    """

    def post(self, request: Request) -> Response | JsonResponse:
        records = user_records_from_collection(collection_read_yaml(uploaded_file(request), key="users"))
        dry_run = request_flag(request, "dry_run", default=False)
        changes = user_collection_load(
            actor=request.user,
            records=records,
            clean=request_flag(request, "clean", default=False),
            overwrite=request_flag(request, "overwrite", default=True),
            dry_run=dry_run,
        )
        return Response(changes) if dry_run else null_response()


class UserDeleteApi(AdminApi):
    """DELETE /users/{username}: delete a user and their budgets (kept in the audit trail)."""

    def delete(self, request: Request, username: str) -> Response | JsonResponse:
        user_delete(actor=request.user, user=user_get_by_name(username=username))
        return null_response()


class UserArchiveApi(AdminApi):
    """GET /users/{username}/archive: the user's archived queries on every dataset."""

    def get(self, request: Request, username: str) -> Response:
        return Response(archive_list_by_user_name(user_name=user_get_by_name(username=username).username))


class UserDatasetAddApi(AdminApi):
    """PATCH /users/{username}/dataset: give access with an initial budget of 0/0."""

    def patch(self, request: Request, username: str) -> Response | JsonResponse:
        body = parse_body(DatasetRequestSerializer, request)
        user = user_get_by_name(username=username)
        budget_add_access(actor=request.user, user=user, dataset=dataset_get_by_name(name=body["dataset_name"]))
        return null_response()


class UserDatasetRevokeApi(AdminApi):
    """PATCH /users/{username}/dataset/del: remove access (a spent budget only with `force: true`)."""

    class InputSerializer(DatasetRequestSerializer):
        force = serializers.BooleanField(default=False)

    def patch(self, request: Request, username: str) -> Response | JsonResponse:
        body = parse_body(self.InputSerializer, request)
        user = user_get_by_name(username=username)
        dataset = dataset_get_by_name(name=body["dataset_name"])
        budget_revoke(actor=request.user, user=user, dataset=dataset, force=body["force"])
        return null_response()


class UserBudgetApi(AdminApi):
    """PATCH /users/{username}/dataset/budget: set the initial epsilon (> 0) and delta (>= 0)."""

    class InputSerializer(DatasetRequestSerializer):
        epsilon = serializers.FloatField()
        delta = serializers.FloatField(min_value=0)

        def validate_epsilon(self, value: float) -> float:
            if value <= 0:
                raise serializers.ValidationError("must be greater than 0.")
            return value

    def patch(self, request: Request, username: str) -> Response | JsonResponse:
        body = parse_body(self.InputSerializer, request)
        budget_change_initial(
            actor=request.user,
            user=user_get_by_name(username=username),
            dataset=dataset_get_by_name(name=body["dataset_name"]),
            epsilon=body["epsilon"],
            delta=body["delta"],
        )
        return null_response()


class CollectionDropApi(AdminApi):
    """DELETE /collections/{collection_name}: empty users (researchers), datasets or queries_archive."""

    def delete(self, request: Request, collection_name: str) -> Response | JsonResponse:
        collection_drop(actor=request.user, name=collection_name)
        return null_response()
