"""Working example request bodies for a dataset: the browsable API's forms and the Swagger examples.

Each body is built from the dataset's metadata alone (its columns, bounds, categories and length),
so it is valid for that dataset: a SmartNoise-SQL count, an OpenDP `dp.len` plan built as
lomas-client builds it (on a context over dummy data), a DiffPrivLib scaler and classifier, and an
MWEM synthesizer on the categorical columns.
"""

import base64
import json
from functools import cache
from importlib.metadata import version
from typing import Any

from csvw_eo.datatypes import XSD_GROUP_MAP, DataTypesGroups

from datasets.metadata import population_size
from queries.libraries import ADAPTERS

# What a dummy run and a dummy download draw by default.
DUMMY_ROWS, DUMMY_SEED = 100, 42
EPSILON = 1.0
DATASET_ROUTES = ("get_dataset_metadata", "get_initial_budget", "get_total_spent_budget", "get_remaining_budget")
_ACCOUNTANT = "_dpl_instance:BudgetAccountant"


def example_body(route: str, *, dataset_name: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The body of a researcher route (by its URL name) on the dataset, or None for a route that takes none."""
    if route in (*DATASET_ROUTES, "get_previous_queries"):
        return {"dataset_name": dataset_name}
    if route == "get_dummy_dataset":
        return {"dataset_name": dataset_name, "dummy_nb_rows": DUMMY_ROWS, "dummy_seed": DUMMY_SEED}
    library = next((name for name in ADAPTERS if route in _library_routes(name)), None)
    body = library_body(library, metadata) if library else None
    if body is None:
        return None
    dummy = {"dummy_nb_rows": DUMMY_ROWS, "dummy_seed": DUMMY_SEED} if route.startswith("dummy_") else {}
    return {"dataset_name": dataset_name, **body, **dummy}


def _library_routes(library: str) -> tuple[str, ...]:
    return f"{library}_query", f"dummy_{library}_query", f"estimate_{library}_cost"


def library_body(library: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The library-specific part of a query on a dataset with this metadata (None if the library cannot
    work on it: DiffPrivLib needs bounded numbers)."""
    builders = {
        "smartnoise_sql": _smartnoise_sql,
        "opendp": _opendp,
        "diffprivlib": _diffprivlib,
        "smartnoise_synth": _smartnoise_synth,
    }
    return builders[library](metadata)


def example_delta(metadata: dict[str, Any]) -> float:
    """A δ the server accepts on this dataset: below 1/n by a wide margin (0 when the metadata gives no length)."""
    rows = population_size(metadata)
    return min(1e-5, 0.1 / rows) if rows else 0.0


def _columns(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return metadata["tableSchema"]["columns"]


def _categorical(metadata: dict[str, Any]) -> list[str]:
    return [c["name"] for c in _columns(metadata) if c.get("keyValues")]


def _bounded_numbers(metadata: dict[str, Any]) -> list[str]:
    numeric = (DataTypesGroups.INTEGER, DataTypesGroups.FLOAT)
    return [c["name"] for c in _columns(metadata) if XSD_GROUP_MAP.get(c["datatype"]) in numeric and "minimum" in c]


def _smartnoise_sql(metadata: dict[str, Any]) -> dict[str, Any]:
    categorical = _categorical(metadata)
    query = "SELECT COUNT(*) AS nb_rows FROM df"
    if categorical:  # an example text for the researcher (names from the metadata), never run by this module
        query = f"SELECT {categorical[0]}, COUNT(*) AS nb_rows FROM df GROUP BY {categorical[0]}"  # noqa: S608
    return {"query_str": query, "epsilon": EPSILON, "delta": example_delta(metadata), "mechanisms": {},
            "postprocess": True}  # fmt: skip


def _opendp(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"opendp_json": _opendp_count_plan(json.dumps(metadata, sort_keys=True)),
            "epsilon": EPSILON, "delta": None, "rho": None, "approx_zcdp": False}  # fmt: skip


@cache
def _opendp_count_plan(metadata_json: str) -> str:
    """A `dp.len()` plan as lomas-client 0.5.1 sends it (base64), built once per metadata on its dummy context.

    OpenDP is imported here, when a page first shows an OpenDP example, not when the web process starts.
    """
    import opendp.prelude as dp
    from csvw_eo.csvw_to_opendp_context import csvw_to_opendp_context

    from datasets.connectors.dummy import DummyConnector

    metadata = json.loads(metadata_json)
    dummy = DummyConnector(metadata, DUMMY_ROWS, DUMMY_SEED).get_polars()
    context = csvw_to_opendp_context(metadata, dummy, split_evenly_over=1, epsilon=EPSILON)
    return base64.b64encode(context.query().select(dp.len()).serialize()).decode()


def _diffprivlib(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """A scaler and a classifier of the first categorical column (or a regression of the last number)."""
    numbers, categorical = _bounded_numbers(metadata), _categorical(metadata)
    target = categorical[0] if categorical else (numbers[-1] if len(numbers) > 1 else None)
    features = [name for name in numbers if name != target][:4]
    if target is None or not features:
        return None
    scaler = {"type": "_dpl_type:StandardScaler", "name": "scaler",
              "params": {"with_mean": True, "with_std": True, "copy": True, "epsilon": 0.5, "bounds": None,
                         "random_state": None, "accountant": _ACCOUNTANT}}  # fmt: skip
    if categorical:
        model = {"type": "_dpl_type:LogisticRegression", "name": "classifier",
                 "params": {"C": 1.0, "tol": 0.0001, "fit_intercept": True, "random_state": None, "max_iter": 100,
                            "verbose": 0, "warm_start": False, "n_jobs": None, "epsilon": EPSILON, "data_norm": 5,
                            "accountant": _ACCOUNTANT}}  # fmt: skip
    else:
        model = {"type": "_dpl_type:LinearRegression", "name": "regression",
                 "params": {"epsilon": EPSILON, "bounds_X": None, "bounds_y": None, "fit_intercept": True,
                            "copy_X": True, "random_state": None, "accountant": _ACCOUNTANT}}  # fmt: skip
    pipeline = {"module": "diffprivlib", "version": version("diffprivlib"), "pipeline": [scaler, model]}
    return {"diffprivlib_json": json.dumps(pipeline), "feature_columns": features, "target_columns": [target],
            "test_size": 0.2, "test_train_split_seed": 1, "imputer_strategy": "drop"}  # fmt: skip


def _smartnoise_synth(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"synth_name": "mwem", "epsilon": EPSILON, "delta": None, "select_cols": _categorical(metadata)[:3],
            "synth_params": {}, "nullable": True, "constraints": "", "return_model": False, "condition": "",
            "nb_samples": 10}  # fmt: skip
