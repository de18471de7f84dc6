"""Admin API routes on datasets and their metadata (spec §1.6).

Mutations answer 200 with a null body, as the reference server does.
"""

import json
from pathlib import Path

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.admin_api import AdminApi
from datasets.collections import (
    dataset_records_from_collection,
    dataset_source_fields,
    dataset_to_wire,
    metadata_check,
    metadata_read_file,
)
from datasets.metadata import metadata_to_wire
from datasets.selectors import dataset_get_by_name, dataset_list_names
from datasets.services import dataset_add, dataset_collection_load, dataset_delete, dataset_replace_metadata
from lomas.collection_files import collection_read_yaml
from lomas.errors import InvalidQuery
from lomas.openapi import CHANGES, FLAGS, METADATA, NULL, UPLOAD, admin_responses, inline_body
from lomas.requests import UPLOAD_PARSERS, null_response, parse_body, request_flag, uploaded_file

NAMES = OpenApiResponse({"type": "array", "items": {"type": "string"}}, description="Names")
METADATA_UPLOAD = inline_body("MetadataUpload", file=serializers.FileField(help_text="csvw-eo JSON"))


class DatasetInfoSerializer(serializers.Serializer):
    """DSInfo (spec §4.2)."""

    dataset_name = serializers.CharField()
    dataset_access = serializers.JSONField()
    metadata_access = serializers.JSONField()


class DatasetListApi(AdminApi):
    """GET /datasets: every dataset name."""

    @extend_schema(tags=["admin"], responses=admin_responses(NAMES))
    def get(self, request: Request) -> Response:
        return Response(dataset_list_names())


class DatasetAddApi(AdminApi):
    """POST /dataset: add one PATH_DB dataset (`dataset_path`) or SQL_DB one (`sql_table`, `sql_credentials_name`:
    an entry of LOMAS_SQL_CREDENTIALS), reading its metadata file (relative to LOMAS_DATA_DIR)."""

    class InputSerializer(serializers.Serializer):
        dataset_name = serializers.CharField()
        database_type = serializers.ChoiceField(choices=["PATH_DB", "SQL_DB"])
        metadata_database_type = serializers.ChoiceField(choices=["PATH_DB"])
        dataset_path = serializers.CharField(required=False, default="")
        sql_table = serializers.CharField(required=False, default="")
        sql_credentials_name = serializers.CharField(required=False, default="")
        metadata_path = serializers.CharField()

    @extend_schema(tags=["admin"], responses=admin_responses(NULL, body=True))
    def post(self, request: Request) -> Response | JsonResponse:
        body = parse_body(self.InputSerializer, request)
        name = body["dataset_name"]
        access = {
            "database_type": body["database_type"],
            "path": body["dataset_path"],
            "table": body["sql_table"],
            "credentials_name": body["sql_credentials_name"],
        }
        dataset_add(
            actor=request.user,
            name=name,
            source=dataset_source_fields(name=name, access=access),
            metadata=metadata_read_file(name=name, path=Path(settings.LOMAS_DATA_DIR) / body["metadata_path"]),
        )
        return null_response()


class DatasetBulkApi(AdminApi):
    """POST /dataset/bulk: load a YAML dataset collection (`file`; `clean`, `overwrite`, `dry_run` flags).

    Relative metadata paths are under LOMAS_DATA_DIR. As in lomas 0.5 the file's datasets
    replace existing entries (`overwrite` defaults to true); budgets on them stay.
    """

    parser_classes = UPLOAD_PARSERS

    @extend_schema(
        tags=["admin"],
        request={"multipart/form-data": UPLOAD},
        parameters=FLAGS,
        responses=admin_responses(CHANGES, body=True),
    )
    def post(self, request: Request) -> Response | JsonResponse:
        entries = collection_read_yaml(uploaded_file(request), key="datasets")
        records = dataset_records_from_collection(entries, base_dir=Path(settings.LOMAS_DATA_DIR))
        overwrite = request_flag(request, "overwrite", default=True)
        dry_run = request_flag(request, "dry_run", default=False)
        changes = dataset_collection_load(
            actor=request.user,
            records=records,
            clean=request_flag(request, "clean", default=False),
            overwrite_datasets=overwrite,
            overwrite_metadata=overwrite,
            dry_run=dry_run,
        )
        return Response(changes) if dry_run else null_response()


class DatasetDetailApi(AdminApi):
    """GET /dataset/{dataset_name}: DSInfo. DELETE: remove the dataset with its metadata (none with budgets)."""

    @extend_schema(tags=["admin"], responses=admin_responses(DatasetInfoSerializer, body=True))
    def get(self, request: Request, dataset_name: str) -> Response:
        return Response(dataset_to_wire(dataset_get_by_name(name=dataset_name)))

    @extend_schema(tags=["admin"], responses=admin_responses(NULL, body=True))
    def delete(self, request: Request, dataset_name: str) -> Response | JsonResponse:
        dataset_delete(actor=request.user, dataset=dataset_get_by_name(name=dataset_name))
        return null_response()


class DatasetMetadataAdminApi(AdminApi):
    """GET /dataset/{dataset_name}/metadata: TableMetadata. PATCH: replace it (multipart `file`, csvw-eo JSON)."""

    parser_classes = UPLOAD_PARSERS

    @extend_schema(tags=["admin"], responses=admin_responses(METADATA, body=True))
    def get(self, request: Request, dataset_name: str) -> Response:
        return Response(metadata_to_wire(dataset_get_by_name(name=dataset_name).metadata))

    @extend_schema(
        tags=["admin"],
        request={"multipart/form-data": METADATA_UPLOAD},
        responses=admin_responses(NULL, body=True),
    )
    def patch(self, request: Request, dataset_name: str) -> Response | JsonResponse:
        dataset = dataset_get_by_name(name=dataset_name)
        try:
            document = json.loads(uploaded_file(request))
        except ValueError as exc:
            raise InvalidQuery(f"Dataset {dataset_name}: the metadata file is not JSON: {exc}.") from exc
        metadata = metadata_check(name=dataset_name, document=document)
        dataset_replace_metadata(actor=request.user, dataset=dataset, metadata=metadata)
        return null_response()
