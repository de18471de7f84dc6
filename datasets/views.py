"""Dataset routes of a researcher: metadata and dummy data (spec §1.4)."""

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.selectors import access_check
from datasets.dummy import frame_to_wire, make_dummy_frame
from datasets.metadata import metadata_to_wire
from datasets.selectors import dummy_check_rows
from lomas.requests import DUMMY_SEED_MAX, DatasetRequestSerializer, parse_body


class DatasetMetadataApi(APIView):
    """POST /get_dataset_metadata: the csvw-eo TableMetadata dump."""

    def post(self, request: Request) -> Response:
        body = parse_body(DatasetRequestSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        return Response(metadata_to_wire(dataset.metadata))


class DummyDatasetApi(APIView):
    """POST /get_dummy_dataset: a seeded dummy frame generated from the metadata only."""

    class InputSerializer(DatasetRequestSerializer):
        dummy_nb_rows = serializers.IntegerField(min_value=1)
        dummy_seed = serializers.IntegerField(min_value=0, max_value=DUMMY_SEED_MAX)

    def post(self, request: Request) -> Response:
        body = parse_body(self.InputSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        dummy_check_rows(nb_rows=body["dummy_nb_rows"])
        frame = make_dummy_frame(dataset.metadata, nb_rows=body["dummy_nb_rows"], seed=body["dummy_seed"])
        return Response(frame_to_wire(frame))
