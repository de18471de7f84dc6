"""Hostile OpenDP plans are refused before anything in them runs.

Each payload does something visible if executed: unpickling it writes a marker file, a
foreign plugin library writes one when loaded, a sink writes the private rows to one.
The control tests show the payloads are live; the others show the server never runs
them: the job fails with a 400, nothing is charged, the user's query slot is released
and no marker appears.
"""

import base64
import io
import json
import re
import shutil
import struct
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import opendp.prelude as dp
import polars as pl
import pytest
from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context
from polars.io.plugins import register_io_source

from budgets.models import LedgerEntry
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from lomas.errors import InvalidQuery
from queries.libraries.opendp.adapter import OpenDPAdapter
from queries.libraries.opendp.guard import PICKLE_REFUSED, PickleRefused, plan_handling
from queries.libraries.opendp.plan import MalformedPlan, UnsafePlan, check_plan
from queries.models import QueryArchive

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
PENGUIN = json.loads((DEMO / "metadata" / "penguin.json").read_text(encoding="utf-8"))
CONSTRUCTOR = """
#include <stdio.h>
__attribute__((constructor)) static void on_load(void) {
    FILE *marker = fopen(MARKER, "w");
    if (marker) { fputs("foreign library loaded", marker); fclose(marker); }
}
"""


class WriteMarker:
    """A "function" whose unpickling, or call, writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, value: Any, *_: Any) -> Any:
        self.marker.write_text("called")
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",)


def client_query(**loss: float) -> Any:
    """A query on the Context lomas-client builds over the default dummy frame."""
    dummy = DummyConnector(PENGUIN, 100, 42).get_polars()
    return csvw_to_opendp_context(PENGUIN, dummy, split_evenly_over=1, **(loss or {"epsilon": 1.0})).query()


def encoded(plan: pl.LazyFrame | bytes) -> str:
    return base64.b64encode(plan if isinstance(plan, bytes) else plan.serialize()).decode()


def body_for(opendp_json: str, **overrides: Any) -> dict[str, Any]:
    return {"dataset_name": "PENGUIN", "opendp_json": opendp_json, "epsilon": 1.0, "delta": None, "rho": None,
            "approx_zcdp": True, **overrides}  # fmt: skip


def adapter(opendp_json: str) -> OpenDPAdapter:
    return OpenDPAdapter(
        body=body_for(opendp_json), connector=PathConnector("penguin.csv", metadata=PENGUIN), metadata=PENGUIN
    )


def frame_map_batches(marker: Path) -> pl.LazyFrame:
    return client_query().polars_plan.map_batches(WriteMarker(marker))


def expression_map_elements(marker: Path) -> pl.LazyFrame:
    udf = pl.col("bill_length_mm").map_elements(WriteMarker(marker), return_dtype=pl.Float64)
    return client_query().polars_plan.select(udf)


def expression_map_batches(marker: Path) -> pl.LazyFrame:
    return client_query().polars_plan.select(pl.col("bill_length_mm").map_batches(WriteMarker(marker)))


def rename_with_python(marker: Path) -> pl.LazyFrame:
    return client_query().polars_plan.select(pl.col("species").name.map(WriteMarker(marker)))


def group_map(marker: Path) -> pl.LazyFrame:
    return client_query().polars_plan.group_by("species").map_groups(WriteMarker(marker), schema=None)


def rolling_python(marker: Path) -> pl.LazyFrame:
    return client_query().polars_plan.select(pl.col("body_mass_g").rolling_map(WriteMarker(marker), window_size=2))


def python_source(marker: Path) -> pl.LazyFrame:
    return register_io_source(WriteMarker(marker), schema={"bill_length_mm": pl.Float64})


PYTHON_PAYLOADS = [frame_map_batches, expression_map_elements, expression_map_batches, rename_with_python,
                   group_map, rolling_python, python_source]  # fmt: skip


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists() or path.read_text() == "control"


def compiled_library(directory: Path, marker: Path, name: str = "libforeign.so") -> Path:
    """A shared library that writes the marker when loaded (a plain file if no C compiler is installed)."""
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / name
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        library.write_bytes(b"not a library")
        return library
    source = directory / "foreign.c"
    source.write_text(CONSTRUCTOR)
    subprocess.run([compiler, "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(library), str(source)], check=True)
    return library


def plan_calling(library: Path, monkeypatch: pytest.MonkeyPatch) -> pl.LazyFrame:
    """dp.len() on the client's Context, with OpenDP's plugin calls pointing at `library`."""
    with monkeypatch.context() as patch:
        patch.setenv("OPENDP_POLARS_LIB_PATH", str(library))
        return client_query().select(dp.len()).polars_plan


def plan_on_wingspan() -> Any:
    """A sum of a column PENGUIN does not have, on a Context over a frame that has it."""
    frame = DummyConnector(PENGUIN, 100, 42).get_polars().with_columns(wingspan=pl.lit(1.0))
    context = csvw_to_opendp_context(PENGUIN, frame, epsilon=1.0, split_evenly_over=1)
    return context.query().select(pl.col("wingspan").fill_null(1.0).dp.sum((0.0, 2.0)))


HEADER = client_query().select(dp.len()).serialize()[:79]  # DSL_VERSION, version, schema hash


def with_dsl_version(plan: bytes, major: int, minor: int) -> bytes:
    return plan[:11] + struct.pack("<HH", major, minor) + plan[15:]


# --- The payloads are live ---------------------------------------------------------------------


def test_control_an_unguarded_deserialization_runs_the_pickled_payload(marker: Path) -> None:
    pl.LazyFrame.deserialize(io.BytesIO(frame_map_batches(marker).serialize()))

    assert marker.read_text() == "unpickled"
    marker.write_text("control")


def test_control_polars_loads_the_foreign_library_named_in_a_plan(
    marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = compiled_library(tmp_path / "foreign", marker)
    if library.read_bytes() == b"not a library":
        pytest.skip("no C compiler to build the foreign library")
    plan = plan_calling(library, monkeypatch)

    with pytest.raises(BaseException, match="undefined symbol"):  # polars panics: the library is no plugin,
        plan.collect()  # but loading it already ran its code

    assert marker.read_text() == "foreign library loaded"
    marker.write_text("control")


# --- Refused by the adapter ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", PYTHON_PAYLOADS)
def test_python_objects_are_refused_before_the_plan_is_deserialized(payload: Callable, marker: Path) -> None:
    with pytest.raises(UnsafePlan) as caught:
        adapter(encoded(payload(marker))).validate()

    assert caught.value.status == 400
    assert caught.value.message == PICKLE_REFUSED
    assert not marker.exists()


@pytest.mark.parametrize("payload", [frame_map_batches, expression_map_elements, group_map, python_source])
def test_the_guard_alone_refuses_unpickling_in_polars(payload: Callable, marker: Path) -> None:
    plan = payload(marker).serialize()

    with pytest.raises(PickleRefused, match=re.escape(PICKLE_REFUSED)), plan_handling():
        pl.LazyFrame.deserialize(io.BytesIO(plan)).collect_schema()

    assert not marker.exists()


def test_a_foreign_plugin_library_is_refused(marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_calling(compiled_library(tmp_path / "foreign", marker), monkeypatch)

    with pytest.raises(UnsafePlan, match=r"^The plan may only call OpenDP: it calls a polars plugin that is not Op"):
        adapter(encoded(plan)).cost()

    assert not marker.exists()


def test_the_client_opendp_library_path_is_replaced_by_the_servers(
    marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A library where a client's OpenDP would be: the server loads its own OpenDP instead.
    lookalike = compiled_library(tmp_path / "venv" / "opendp" / "lib", marker, name="opendp.abi3.so")
    plan = plan_calling(lookalike, monkeypatch)

    result = adapter(encoded(plan)).run()

    [row] = json.loads(result["value"])
    assert abs(row["len"] - 344) < 40  # a noisy count: the server's OpenDP ran
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (frame_map_batches, PICKLE_REFUSED),
        (expression_map_elements, PICKLE_REFUSED),
        (
            lambda marker: pl.scan_csv(DEMO / "datasets" / "penguin.csv"),
            "The plan reads or writes files or URLs (Scan)",
        ),
        (lambda marker: client_query().polars_plan.sink_csv(marker, lazy=True), "The plan reads or writes files"),
    ],
    ids=["frame-udf", "expression-udf", "scan", "sink"],
)
def test_the_second_check_refuses_the_same_plans_in_polars_json_form(
    make: Callable, message: str, marker: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # polars deprecates the JSON form
        tree = json.loads(make(marker).serialize(format="json"))

    with pytest.raises(UnsafePlan, match=re.escape(message)):
        check_plan(tree, library_allowed=lambda path: False)


@pytest.mark.parametrize(
    "make",
    [
        lambda marker: pl.scan_csv(DEMO / "datasets" / "penguin.csv").select(dp.len()),
        lambda marker: pl.scan_parquet("https://example.org/penguin.parquet").select(dp.len()),
        lambda marker: client_query().polars_plan.sink_csv(marker, lazy=True),
    ],
    ids=["scan-server-file", "scan-url", "sink-to-server-file"],
)
def test_plans_that_read_or_write_files_or_urls_are_refused(make: Callable, marker: Path) -> None:
    with pytest.raises(UnsafePlan, match=r"^The plan reads or writes files or URLs \((Scan|Sink)\)") as caught:
        adapter(encoded(make(marker))).run()

    assert "344" not in caught.value.message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("opendp_json", "message"),
    [
        (encoded(client_query().select(dp.len()).serialize()[:900]), "The plan is truncated or corrupt."),
        (encoded(client_query().select(dp.len()).serialize()[:40]), "The plan is not a serialized polars LazyFrame"),
        (encoded(client_query().select(dp.len()).serialize() + b"\x00"), "The plan is truncated or corrupt."),
        (encoded(client_query().select(dp.len()))[:-3], "opendp_json is not base64 text"),
        ("this is not base64!", "opendp_json is not base64 text"),
        (encoded(b'{"Select": {}}'), "The plan is not a serialized polars LazyFrame"),
        (encoded(HEADER + b"\x82\xa4root\x01\xa4root\x02"), "The plan is truncated or corrupt."),
        (encoded(HEADER + b"\x91" * 300 + b"\xc0"), "The plan is nested too deeply."),
    ],
    ids=[
        "truncated",
        "header-only",
        "trailing-byte",
        "truncated-base64",
        "not-base64",
        "json-not-binary",
        "duplicate-key",
        "too-deep",
    ],
)
def test_malformed_plans_are_refused(opendp_json: str, message: str) -> None:
    with pytest.raises(MalformedPlan) as caught:
        adapter(opendp_json).validate()

    assert caught.value.message.startswith(message)


def test_a_plan_from_another_polars_version_is_refused_with_both_versions() -> None:
    plan = with_dsl_version(client_query().select(dp.len()).serialize(), 22, 0)

    with pytest.raises(MalformedPlan, match=r"DSL_VERSION\) 22\.0; this server reads 24\.\d+: build it with"):
        adapter(encoded(plan)).validate()


def test_a_plan_larger_than_the_setting_is_refused(settings: Any) -> None:
    settings.LOMAS_OPENDP_MAX_PLAN_BYTES = 1000
    plan = encoded(client_query().select(dp.len()))  # about 1.7 kB

    with pytest.raises(InvalidQuery, match=r"^The plan is larger than the server accepts \(1000 bytes\)\.$"):
        adapter(plan).validate()
    with pytest.raises(InvalidQuery, match=r"^The plan is larger than the server accepts"):
        adapter("A" * 10_000).validate()  # refused on its length, before decoding


def test_a_plan_built_on_columns_not_in_the_metadata_is_refused() -> None:
    with pytest.raises(InvalidQuery, match=r"^The plan reads columns that are not in the dataset's metadata: \['wings"):
        adapter(encoded(plan_on_wingspan())).validate()


# --- Refused through the API: a failed job, nothing charged, the query slot released ------------


@pytest.fixture
def submit(django_capture_on_commit_callbacks: Any) -> Callable:
    def _submit(api: Any, route: str, body: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            accepted = api.post(f"/api/{route}", body, format="json")
        assert accepted.status_code == 202, accepted.content
        return api.get(f"/api/status/{accepted.json()['uid']}")

    return _submit


HOSTILE_BODIES: dict[str, Callable[[Path, Path, pytest.MonkeyPatch], dict[str, Any]]] = {
    "pickled-frame-udf": lambda marker, tmp, patch: body_for(encoded(frame_map_batches(marker))),
    "expression-map-elements": lambda marker, tmp, patch: body_for(encoded(expression_map_elements(marker))),
    "foreign-plugin": lambda marker, tmp, patch: body_for(
        encoded(plan_calling(compiled_library(tmp / "foreign", marker), patch))
    ),
    "scan-server-file": lambda marker, tmp, patch: body_for(
        encoded(pl.scan_csv(DEMO / "datasets" / "penguin.csv").select(dp.len()))
    ),
    "truncated": lambda marker, tmp, patch: body_for(encoded(client_query().select(dp.len()).serialize()[:900])),
    "not-base64": lambda marker, tmp, patch: body_for("this is not base64!"),
    "wrong-dsl-version": lambda marker, tmp, patch: body_for(
        encoded(with_dsl_version(client_query().select(dp.len()).serialize(), 22, 0))
    ),
    "rho-without-delta": lambda marker, tmp, patch: body_for(
        encoded(client_query(rho=0.5, delta=1e-6).select(dp.len())), epsilon=None, rho=0.5
    ),
    "columns-not-in-metadata": lambda marker, tmp, patch: body_for(encoded(plan_on_wingspan())),
}


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", list(HOSTILE_BODIES))
@pytest.mark.parametrize("route", ["opendp_query", "estimate_opendp_cost", "dummy_opendp_query"])
def test_a_hostile_plan_fails_its_job_and_charges_nothing(
    hostile: str, route: str, alice: Any, alice_api: Any, submit: Callable, marker: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    body = HOSTILE_BODIES[hostile](marker, tmp_path, monkeypatch)
    if route == "dummy_opendp_query":
        body |= {"dummy_nb_rows": 100, "dummy_seed": 42}

    status = submit(alice_api, route, body)

    assert status.status_code == 400, status.content
    assert status.json()["status"] == "failed"
    assert status.json()["error"]["type"] == "InvalidQueryException"
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    assert not QueryArchive.objects.exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True
    assert not marker.exists()


@pytest.mark.django_db
def test_an_oversized_plan_fails_its_job_and_charges_nothing(
    alice: Any, alice_api: Any, submit: Callable, settings: Any
) -> None:
    settings.LOMAS_OPENDP_MAX_PLAN_BYTES = 1000

    status = submit(alice_api, "opendp_query", body_for(encoded(client_query().select(dp.len()))))

    assert status.status_code == 400
    assert status.json()["error"]["message"] == "The plan is larger than the server accepts (1000 bytes)."
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).exists()
    alice.lomas_profile.refresh_from_db()
    assert alice.lomas_profile.may_query is True
