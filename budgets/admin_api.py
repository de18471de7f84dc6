"""Admin API routes on users with their budgets, and on access to datasets (spec §1.6).

Mutations answer 200 with a null body, as the reference server does.
"""

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.admin_api import AdminApi
from accounts.selectors import user_get_by_name, user_list
from accounts.services import user_add
from budgets.collections import user_budget_records_from_collection, user_to_wire
from budgets.selectors import dataset_budget_to_wire
from budgets.services import (
    budget_add_access,
    budget_change_initial,
    budget_revoke,
    dataset_budget_set,
    user_collection_load,
)
from datasets.selectors import dataset_get_by_name
from lomas.collection_files import collection_read_yaml
from lomas.openapi import CHANGES, FLAGS, NULL, UPLOAD, admin_responses
from lomas.requests import (
    UPLOAD_PARSERS,
    DatasetRequestSerializer,
    StrictCharField,
    null_response,
    parse_body,
    request_flag,
    uploaded_file,
)


class UserIdSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.CharField(allow_blank=True)


class UserSerializer(serializers.Serializer):
    """A lomas User (spec §4.1); secrets are never shown."""

    id = UserIdSerializer()
    may_query = serializers.BooleanField()
    admin = serializers.BooleanField()
    datasets_list = serializers.ListField(child=serializers.JSONField())


class UsersApi(AdminApi):
    """GET /users: every user (no secrets). POST /users: add a user from `id.name` / `id.email` only."""

    class InputSerializer(serializers.Serializer):
        class IdSerializer(serializers.Serializer):
            name = StrictCharField()
            email = StrictCharField(allow_blank=True, required=False, default="")
            client_secret = StrictCharField(required=False, allow_null=True, default=None)

        id = IdSerializer()

    @extend_schema(tags=["admin"], responses=admin_responses(UserSerializer(many=True)))
    def get(self, request: Request) -> Response:
        return Response([user_to_wire(user) for user in user_list()])

    @extend_schema(tags=["admin"], responses=admin_responses(NULL, body=True))
    def post(self, request: Request) -> Response | JsonResponse:
        identity = parse_body(self.InputSerializer, request)["id"]
        user_add(actor=request.user, username=identity["name"], email=identity["email"])
        return null_response()


class UsersFileApi(AdminApi):
    """POST /usersfile: bulk-load a YAML user collection (`file`; `clean`, `overwrite`, `dry_run` flags).

    As in lomas 0.5 the file's users replace existing entries (`overwrite` defaults to true);
    a dry run answers the list of changes without writing anything.
    """

    parser_classes = UPLOAD_PARSERS

    @extend_schema(
        tags=["admin"],
        request={"multipart/form-data": UPLOAD},
        parameters=FLAGS,
        responses=admin_responses(CHANGES, body=True),
    )
    def post(self, request: Request) -> Response | JsonResponse:
        records = user_budget_records_from_collection(collection_read_yaml(uploaded_file(request), key="users"))
        dry_run = request_flag(request, "dry_run", default=False)
        changes = user_collection_load(
            actor=request.user,
            records=records,
            clean=request_flag(request, "clean", default=False),
            overwrite=request_flag(request, "overwrite", default=True),
            dry_run=dry_run,
        )
        return Response(changes) if dry_run else null_response()


class UserDatasetAddApi(AdminApi):
    """PATCH /users/{username}/dataset: give access with an initial budget of 0/0."""

    @extend_schema(tags=["admin"], request=DatasetRequestSerializer, responses=admin_responses(NULL, body=True))
    def patch(self, request: Request, username: str) -> Response | JsonResponse:
        body = parse_body(DatasetRequestSerializer, request)
        user = user_get_by_name(username=username)
        budget_add_access(actor=request.user, user=user, dataset=dataset_get_by_name(name=body["dataset_name"]))
        return null_response()


class UserDatasetRevokeApi(AdminApi):
    """PATCH /users/{username}/dataset/del: remove access (the budget is revoked, its ledger kept)."""

    @extend_schema(tags=["admin"], request=DatasetRequestSerializer, responses=admin_responses(NULL, body=True))
    def patch(self, request: Request, username: str) -> Response | JsonResponse:
        body = parse_body(DatasetRequestSerializer, request)
        user = user_get_by_name(username=username)
        budget_revoke(actor=request.user, user=user, dataset=dataset_get_by_name(name=body["dataset_name"]))
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

    @extend_schema(tags=["admin"], responses=admin_responses(NULL, body=True))
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


class DatasetBudgetSerializer(serializers.Serializer):
    """A dataset's total budget over all its researchers: cap (null if none), spent in total, remaining."""

    dataset_name = serializers.CharField()
    epsilon = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    total_spent_epsilon = serializers.FloatField()
    total_spent_delta = serializers.FloatField()
    remaining_epsilon = serializers.FloatField(allow_null=True)
    remaining_delta = serializers.FloatField(allow_null=True)


class DatasetBudgetApi(AdminApi):
    """GET /dataset/{dataset_name}/budget: the dataset's total budget.
    PATCH: cap it at epsilon and delta (>= 0), never below what its researchers spent in total."""

    class InputSerializer(serializers.Serializer):
        epsilon = serializers.FloatField(min_value=0)
        delta = serializers.FloatField(min_value=0)

    @extend_schema(tags=["admin"], responses=admin_responses(DatasetBudgetSerializer, body=True))
    def get(self, request: Request, dataset_name: str) -> Response:
        return Response(dataset_budget_to_wire(dataset=dataset_get_by_name(name=dataset_name)))

    @extend_schema(tags=["admin"], request=InputSerializer, responses=admin_responses(NULL, body=True))
    def patch(self, request: Request, dataset_name: str) -> Response | JsonResponse:
        body = parse_body(self.InputSerializer, request)
        dataset = dataset_get_by_name(name=dataset_name)
        dataset_budget_set(actor=request.user, dataset=dataset, epsilon=body["epsilon"], delta=body["delta"])
        return null_response()
