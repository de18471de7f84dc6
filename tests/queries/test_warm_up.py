"""Workers load the DP libraries before the first job, and a job loads its library before its time limit starts;
preparing a hot dataset runs each library's warm-up request on its twin."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from queries.libraries import ADAPTERS, get_adapter, get_request_serializer
from queries.libraries.base import request_scope, twin_connector
from queries.services import dataset_prepare_hot
from tests.conftest import DEMO_DATASETS, demo_metadata

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")
import django
django.setup()
from queries.libraries import ADAPTERS, get_adapter, warm_up_all
lazy = {module for library in ADAPTERS for module in get_adapter(library).library_modules}
before = lazy & set(sys.modules)
warm_up_all()
print(json.dumps({"loaded": sorted(lazy - before), "missing": sorted(lazy - set(sys.modules))}))
"""


def test_warm_up_loads_every_library_module_the_adapters_import_lazily():
    # given a fresh process (the test process has loaded libraries already)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"DJANGO_DEBUG": "true", "PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )  # fmt: skip
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    # then warm-up loaded the synthesizers (networkx through mbi) and left nothing out
    assert "snsynth.aim" in modules["loaded"]
    assert modules["missing"] == []


@pytest.mark.parametrize("stem", DEMO_DATASETS.values())
@pytest.mark.parametrize("library", ADAPTERS)
def test_the_warm_up_request_is_a_query_its_route_accepts_and_the_twin_runs(library, stem):
    # given a demo dataset's metadata and the request its preparation rehearses for the library
    metadata = demo_metadata(stem)
    adapter_class = get_adapter(library)
    body = adapter_class.warm_up_request(metadata)
    if body is None:
        return
    # then the library's query route accepts it as it stands
    request = get_request_serializer(library, "query")(data={"dataset_name": "ANY", **body})
    assert request.is_valid(), request.errors
    # and it validates, costs and runs on the twin, as a preparing worker runs it
    with request_scope():
        adapter = adapter_class(body=body, connector=twin_connector(metadata), metadata=metadata)
        adapter.validate()
        assert adapter.cost().epsilon > 0
        assert adapter.run()["type"] == ("opendp_polars" if library == "opendp" else library)


def test_opendp_and_diffprivlib_have_a_warm_up_request_where_the_metadata_allows_one():
    # OpenDP has one on every demo dataset; DiffPrivLib on each with a bounded numeric column
    # (BIRTHDAYS has a date only)
    def rehearsed(library: str) -> list[str]:
        adapter_class = get_adapter(library)
        return [name for name, stem in DEMO_DATASETS.items() if adapter_class.warm_up_request(demo_metadata(stem))]

    assert rehearsed("opendp") == list(DEMO_DATASETS)
    assert rehearsed("diffprivlib") == [name for name in DEMO_DATASETS if name != "BIRTHDAYS"]


def test_preparing_the_hot_datasets_runs_each_warm_up_request_without_an_error(penguin, iris, settings, caplog):
    # given every dataset hot
    settings.LOMAS_HOT_DATASETS = ["*"]
    # when a worker prepares them
    with caplog.at_level(logging.INFO, logger="queries"):
        dataset_prepare_hot()
    # then each was prepared for every library, and nothing was logged as an error
    prepared = [record.getMessage() for record in caplog.records if " prepared in " in record.getMessage()]
    assert sorted(message.split()[1] for message in prepared) == ["IRIS", "PENGUIN"]
    assert not any(", except for " in message for message in prepared)
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
