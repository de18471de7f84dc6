"""The smartnoise-synth adapter on PENGUIN, through the real library."""

import base64
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from lomas.errors import ExternalLibraryError, InvalidQuery
from queries.libraries.smartnoise_synth.adapter import QueryRequest, SmartnoiseSynthAdapter

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
FEW_COLUMNS = ["species", "island", "sex", "flipper_length_mm"]
CATEGORIES = {
    "species": {"Adelie", "Chinstrap", "Gentoo"},
    "island": {"Torgersen", "Biscoe", "Dream"},
    "sex": {"MALE", "FEMALE"},
}
BOUNDS = {
    "bill_length_mm": (30.0, 65.0),
    "bill_depth_mm": (13.0, 23.0),
    "flipper_length_mm": (150.0, 250.0),
    "body_mass_g": (2000.0, 7000.0),
}


def load(name: str) -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / f"{name}.json").read_text(encoding="utf-8"))


class CountingConnector(DataConnector):
    """A frame (PENGUIN's by default), counting how often the adapter asks for its rows."""

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        self.frame = frame if frame is not None else PathConnector("penguin.csv", metadata=load("penguin")).get_pandas()
        self.reads = 0

    def get_pandas(self) -> pd.DataFrame:
        self.reads += 1
        return self.frame


def body(synth_name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "dataset_name": "PENGUIN",
        "synth_name": synth_name,
        "epsilon": 1.0,
        "delta": None if synth_name == "mwem" else 1e-5,  # mwem is pure ε-DP: a delta is refused
        "select_cols": FEW_COLUMNS,
        "synth_params": {},
        "nullable": False,
        "constraints": "",
        "return_model": False,
        "condition": "",
        "nb_samples": 50,
        **overrides,
    }


def adapter(synth_name: str, connector: DataConnector | None = None, metadata: dict | None = None, **overrides: Any):
    return SmartnoiseSynthAdapter(
        body=body(synth_name, **overrides),
        connector=connector or CountingConnector(),
        metadata=metadata or load("penguin"),
    )


def samples_of(result: dict[str, Any]) -> pd.DataFrame:
    assert result["type"] == "sn_synth_samples"
    json.dumps(result, allow_nan=False)
    return pd.DataFrame.from_dict(result["df_samples"], orient="tight")


def assert_within_metadata(frame: pd.DataFrame, columns: list[str]) -> None:
    assert list(frame.columns) == columns
    for name in columns:
        values = [value for value in frame[name] if value != ""]
        if name in CATEGORIES:
            assert set(values) <= CATEGORIES[name], name
        else:
            lower, upper = BOUNDS[name]
            assert all(isinstance(value, float) and lower <= value <= upper for value in values), name


# --- fits: cost and samples -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("synth_name", "params", "expected_cost"),
    [
        ("mwem", {}, (1.0, 0.0)),  # pure ε-DP: delta 0
        ("mst", {}, (1.0, 1e-5)),
        ("aim", {}, (1.0, 1e-5)),
    ],
)
def test_marginal_synthesizer_costs_its_budget_and_samples_within_the_metadata(synth_name, params, expected_cost):
    connector = CountingConnector()
    synth = adapter(synth_name, connector, synth_params=params, nb_samples=40)
    cost = synth.cost()
    frame = samples_of(synth.run())
    assert (cost.epsilon, cost.delta) == expected_cost
    assert len(frame) == 40
    assert_within_metadata(frame, FEW_COLUMNS)
    assert connector.reads == 1  # the cost reads no row, the run reads them once


@pytest.mark.slow
def test_dpctgan_is_charged_its_planned_epsilon_and_samples_every_column():
    penguin_columns = [column["name"] for column in load("penguin")["tableSchema"]["columns"]]
    synth = adapter("dpctgan", select_cols=[], nullable=True, synth_params={"epochs": 2, "batch_size": 50})
    cost = synth.cost()
    frame = samples_of(synth.run())
    assert 0 < cost.epsilon <= 1.0
    assert cost.delta == 1e-5
    assert_within_metadata(frame, penguin_columns)


def test_gan_without_delta_uses_the_published_row_count_not_the_private_one():
    synth = adapter("dpctgan", delta=None, synth_params={"epochs": 1, "batch_size": 50})
    assert synth.cost().delta == pytest.approx(1 / (344 * 344**0.5))


def test_transformers_come_from_the_metadata_never_from_the_data():
    # given private rows with an island and flipper lengths the metadata does not know
    frame = CountingConnector().frame.copy()
    frame["island"] = frame["island"].astype(object)
    frame.loc[:150, "island"] = "Atlantis"
    frame.loc[:150, "flipper_length_mm"] = 999.0
    synth = adapter("mwem", CountingConnector(frame), nb_samples=200)
    # when
    synth.cost()
    samples = samples_of(synth.run())
    # then
    assert set(samples["island"]) <= CATEGORIES["island"]
    assert samples["flipper_length_mm"].between(150.0, 250.0).all()


def test_custom_constraints_override_the_default_per_column():
    constraints = {
        "module": "smartnoise-synth",
        "version": "1.0.8",
        "constraints": {
            "flipper_length_mm": {
                "type": "_ssynth_transformer:BinTransformer",
                "params": {"lower": 150.0, "upper": 250.0, "bins": 4},
            },
            "sex": "drop",
        },
    }
    synth = adapter("mwem", constraints=json.dumps(constraints), nb_samples=100)
    synth.cost()
    samples = samples_of(synth.run())
    assert list(samples.columns) == ["species", "island", "flipper_length_mm"]
    assert set(samples["flipper_length_mm"]) <= {162.5, 187.5, 212.5, 237.5}


def test_conditional_sampling_keeps_only_matching_rows():
    synth = adapter("mwem", condition="species = 'Gentoo'", nb_samples=20)
    synth.cost()
    samples = samples_of(synth.run())
    assert 0 < len(samples) <= 20
    assert set(samples["species"]) == {"Gentoo"}


@pytest.mark.parametrize(
    ("synth_name", "params", "delta"), [("mwem", {}, None), ("dpctgan", {"epochs": 2, "batch_size": 2}, 0.1)]
)
def test_datetimes_are_encoded_relative_to_their_lower_bound(synth_name, params, delta):
    birthday = load("birthday")
    frame = PathConnector("birthday.csv", metadata=birthday).get_pandas()
    synth = adapter(synth_name, CountingConnector(frame), birthday, select_cols=[], synth_params=params, delta=delta)
    synth.cost()
    samples = pd.to_datetime(samples_of(synth.run())["birthday"])
    assert samples.between(pd.Timestamp("1900-01-01"), pd.Timestamp("2050-01-01")).all()


def test_dummy_data_fits_too():
    dummy = DummyConnector(load("penguin"), 200, 3)
    synth = adapter("mwem", dummy)
    assert synth.cost().epsilon == 1.0
    assert_within_metadata(samples_of(synth.run()), FEW_COLUMNS)


# --- costs, plans and rehearsals -------------------------------------------------------------------


def test_dpctgan_trains_only_the_epochs_its_epsilon_affords():
    synth = adapter("dpctgan", epsilon=0.5, synth_params={"epochs": 300, "batch_size": 50})
    plan = synth._training_plan
    assert 1 <= plan.epochs < 300
    assert synth.cost().epsilon == plan.epsilon <= 0.5
    assert adapter("dpctgan", epsilon=0.5, synth_params={"epochs": plan.epochs + 1, "batch_size": 50}).cost() == (
        synth.cost()
    )


def test_mwem_iterations_and_width_come_from_the_published_row_count():
    kwargs = adapter("mwem")._synth_kwargs
    assert (kwargs["iterations"], kwargs["marginal_width"]) == (30, 2)  # ceil(log10 344) * 10; 344 <= 10 000 rows
    assert adapter("mwem", synth_params={"iterations": 7})._synth_kwargs["iterations"] == 7


@pytest.mark.parametrize(
    ("synth_name", "overrides", "error", "message"),
    [
        ("mwem", {"condition": "wingspan > 3"}, InvalidQuery, "Error sampling: Could not evaluate `condition`"),
        ("aim", {"condition": "wingspan > 3"}, InvalidQuery, "Error sampling: Could not evaluate `condition`"),
        ("mst", {"constraints": '{"flipper_length_mm": {"type": "MinMaxTransformer", '
                 '"params": {"lower": 150.0, "upper": 250.0}}}'}, ExternalLibraryError, "Error fitting model"),
        ("aim", {"constraints": '{"flipper_length_mm": {"type": "MinMaxTransformer", '
                 '"params": {"lower": 150.0, "upper": 250.0}}}'}, ExternalLibraryError, "Error fitting model"),
    ],
)  # fmt: skip
def test_rehearsal_on_the_twin_fails_where_the_real_run_would(synth_name, overrides, error, message):
    twin = adapter(synth_name, DummyConnector(load("penguin"), 100, 0), **overrides)
    with pytest.raises(error, match=f"^{message}"):
        twin.rehearse()


def test_aim_with_fewer_rounds_than_columns_is_refused():
    with pytest.raises(InvalidQuery, match=r"^synth_params\['rounds'\] must be at least 4"):
        adapter("aim", synth_params={"rounds": 3}).validate()


def test_mwem_in_place_update_is_the_librarys_multiplicative_weights():
    from snsynth.mwem import Cuboid, MWEMSynthesizer, Query

    from queries.libraries.smartnoise_synth.adapter import _mwem_public_domain

    rng = np.random.default_rng(1)
    np.random.seed(1)  # Query.make_arbitrary draws its ranges from numpy's global generator
    dimensions = [3, 4, 5]
    synthetic = rng.random(dimensions) * 10
    queries = [Cuboid.make_cuboid(dimensions, columns) for columns in ([0, 1], [1, 2], [0, 1, 2])]
    queries += [Query.make_arbitrary(dimensions) for _ in range(3)]  # add_ranges: one range each
    queries.append(Cuboid([Query.make_arbitrary(dimensions) for _ in range(6)], None))  # ranges that overlap
    measured = {index: list(rng.random(len(cuboid.queries)) * 20) for index, cuboid in enumerate(queries)}
    model = MWEMSynthesizer(epsilon=1.0)
    expected = MWEMSynthesizer._multiplicative_weights(model, synthetic.copy(), queries, measured, None, 5)
    with _mwem_public_domain(model, dimensions, 100):
        updated = model._multiplicative_weights(synthetic.copy(), queries, measured, None, 5)
    np.testing.assert_allclose(updated, expected, rtol=1e-9)
    assert "_multiplicative_weights" not in vars(model)  # the library's method again, for pickling


def test_dpctgan_noise_is_not_seeded():
    import torch

    after_training = []
    for _ in range(2):
        adapter(
            "dpctgan", DummyConnector(load("penguin"), 100, 0), synth_params={"epochs": 3, "batch_size": 50}
        ).rehearse()
        after_training.append(torch.rand(1).item())  # snsynth's Discriminator() seeds torch with 0
    assert after_training[0] != after_training[1]


# --- the fitted model -----------------------------------------------------------------------------

SAMPLE_IN_FRESH_PROCESS = """
import base64, json, pickle, sys
model = pickle.loads(base64.b64decode(sys.stdin.read()))
samples = model.sample(7)
training_rows = [getattr(model, "data", None), getattr(getattr(model, "_data_sampler", None), "_data", None)]
print(json.dumps({"columns": list(samples.columns), "rows": len(samples),
                  "rows_kept": [0 if rows is None else len(rows) for rows in training_rows]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("synth_name", "params"), [("mwem", {}), ("aim", {}), ("dpctgan", {"epochs": 2, "batch_size": 50})]
)
def test_returned_model_samples_in_a_fresh_process_and_holds_no_training_rows(synth_name, params):
    synth = adapter(synth_name, synth_params=params, return_model=True)
    synth.cost()
    result = synth.run()
    assert set(result) == {"type", "model"}
    assert result["type"] == "smartnoise_synth"
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE_IN_FRESH_PROCESS],
        input=result["model"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"columns": FEW_COLUMNS, "rows": 7, "rows_kept": [0, 0]}
    if synth_name == "mwem":
        model = pickle.loads(base64.b64decode(result["model"]))  # our own model, in the test
        assert all(real is None for _, real, _ in model.synthetic_histograms)


# --- bad inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"synth_name": "pacsynth"}, "pacsynth synthesizer not supported"),
        ({"synth_name": "mst", "return_model": True}, "mst synthesizer cannot be returned"),
        ({"select_cols": ["species", "wingspan"]}, "Error while selecting provided select_cols: columns ['wingspan']"),
        ({"synth_params": {"epsilon": 3.0}}, "synth_params ['epsilon'] not allowed for mwem"),
        ({"synth_params": {"verbose": True}}, "synth_params ['verbose'] not allowed for mwem"),
        ({"synth_params": {"iterations": "many"}}, "synth_params['iterations'] must be an integer"),
        ({"synth_name": "dpctgan", "synth_params": {"epochs": 301}}, "synth_params['epochs'] must be at most 300"),
        ({"synth_name": "dpctgan", "synth_params": {"cuda": True}}, "synth_params ['cuda'] not allowed for dpctgan"),
        ({"synth_name": "aim", "delta": 0.0}, "aim needs delta > 0"),
        ({"constraints": "{'sex': 'drop'}"}, "constraints must be JSON"),
        ({"constraints": '{"sex": {"type": "os.system", "params": {}}}'}, "constraints['sex']: unknown transformer"),
        (
            {"constraints": '{"sex": {"type": "MinMaxTransformer", "params": {"epsilon": 1.0}}}'},
            "MinMaxTransformer takes only",
        ),
        (
            {"constraints": '{"sex": {"type": "AnonymizationTransformer", "params": {"fake": "seed_instance"}}}'},
            "fake must be one of",
        ),
        (
            {"constraints": '{"flipper_length_mm": {"type": "MinMaxTransformer", "params": {}}}'},
            "Column 'flipper_length_mm'",
        ),
    ],
)
def test_bad_request_is_refused_before_reading_data(overrides, message):
    connector = CountingConnector()
    synth = adapter(overrides.pop("synth_name", "mwem"), connector, **overrides)
    with pytest.raises(InvalidQuery) as refused:
        synth.cost()
    assert refused.value.status == 400
    assert refused.value.message.startswith(message) or message in refused.value.message
    assert connector.reads == 0


def test_pategan_on_a_small_dataset_is_an_external_library_error():
    with pytest.raises(ExternalLibraryError) as refused:
        adapter("pategan").cost()
    assert (refused.value.status, refused.value.library) == (422, "smartnoise_synth")
    assert refused.value.message.startswith("pategan not reliable with this dataset")


def test_a_column_without_categories_or_bounds_needs_a_constraint():
    titanic = load("titanic")
    frame = PathConnector("titanic.csv", metadata=titanic).get_pandas()
    with pytest.raises(InvalidQuery, match="Column 'Name' has neither categories"):
        adapter("mwem", CountingConnector(frame), titanic, select_cols=["Name", "Sex"]).cost()
    synth = adapter(
        "mwem", CountingConnector(frame), titanic, select_cols=["Name", "Sex"], constraints='{"Name": "drop"}'
    )
    synth.cost()
    assert list(samples_of(synth.run()).columns) == ["Sex"]


def test_batch_larger_than_the_published_row_count_is_refused_before_reading_data():
    connector = CountingConnector()
    synth = adapter("dpctgan", connector, synth_params={"epochs": 1})  # default batch_size 500 > 344 published rows
    with pytest.raises(InvalidQuery) as refused:
        synth.cost()
    assert (
        refused.value.message == "synth_params['batch_size'] must be at most the dataset's published row count (344)."
    )
    assert connector.reads == 0


def test_nb_samples_is_capped_by_configuration(settings):
    settings.LOMAS_SYNTH_MAX_SAMPLES = 1000
    request = QueryRequest(data=body("mwem", nb_samples=1001))
    assert not request.is_valid()
    assert request.errors["nb_samples"] == ["Ensure this value is at most 1000."]
    assert QueryRequest(data=body("mwem", nb_samples=1000)).is_valid()


def test_aim_converts_its_epsilon_and_delta_to_rho_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real fit reuses the rho the twin's rehearsal found (public inputs), and the next request finds it again."""
    import snsynth.utils

    from queries.libraries.base import request_scope

    searches = []
    search = snsynth.utils.dp.binary_search_param
    monkeypatch.setattr(snsynth.utils.dp, "binary_search_param", lambda *a, **k: searches.append(1) or search(*a, **k))
    request = {"select_cols": ["species", "sex"], "synth_params": {"rounds": 2}}
    with request_scope():
        twin = adapter("aim", connector=DummyConnector(load("penguin"), 100, 0), **request)
        twin.rehearse()
        rehearsed = len(searches)
        samples = samples_of(adapter("aim", **request).run())
    assert rehearsed > 0
    assert len(searches) == rehearsed
    assert set(samples.columns) == {"species", "sex"}
    with request_scope():
        twin.rehearse()
    assert len(searches) == 2 * rehearsed


def test_warm_up_sets_xla_to_compile_quickly_and_keeps_an_operators_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=2 --xla_cpu_use_thunk_runtime=true")
    SmartnoiseSynthAdapter.warm_up()
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_backend_optimization_level=2", "--xla_cpu_use_thunk_runtime=true",
                     "--xla_llvm_disable_expensive_passes=true"]  # fmt: skip
