"""Red-team tests of the smartnoise-synth adapter (issue 11, case 4 and "Only DP outputs leave the server").

Each test states its attack in its docstring and asserts that it no longer works.
"""

import base64
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from datasets.connectors.base import DataConnector
from datasets.connectors.local import PathConnector
from lomas.errors import InvalidQuery
from queries.libraries.base import twin_connector
from queries.libraries.smartnoise_synth.adapter import SmartnoiseSynthAdapter
from queries.libraries.smartnoise_synth.dpctgan import spent_epsilon

METADATA = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"


def load(name: str) -> dict[str, Any]:
    return json.loads((METADATA / f"{name}.json").read_text(encoding="utf-8"))


class FrameConnector(DataConnector):
    """A private frame, counting how often the adapter reads it."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.reads = 0

    def get_pandas(self) -> pd.DataFrame:
        self.reads += 1
        return self.frame


def private(name: str) -> FrameConnector:
    return FrameConnector(PathConnector(f"{name}.csv", metadata=load(name)).get_pandas())


def request(synth_name: str, **overrides: Any) -> dict[str, Any]:
    return {"dataset_name": "PENGUIN", "synth_name": synth_name, "epsilon": 1.0,
            "delta": None if synth_name == "mwem" else 1e-5, "select_cols": [],
            "synth_params": {}, "nullable": False, "constraints": "", "return_model": False, "condition": "",
            "nb_samples": 20, **overrides}  # fmt: skip


def adapter(body: dict[str, Any], connector: DataConnector, dataset: str = "penguin") -> SmartnoiseSynthAdapter:
    return SmartnoiseSynthAdapter(body=body, connector=connector, metadata=load(dataset))


def returned_model(body: dict[str, Any], connector: DataConnector, dataset: str = "penguin") -> Any:
    result = adapter({**body, "return_model": True}, connector, dataset).run()
    return pickle.loads(base64.b64decode(result["model"]))


GAN = {"epochs": 3, "batch_size": 50}
# PENGUIN's complete rows: 333 over every column, 342 with species and bill_length_mm, 344 with species and island.
COMPLETE_ROW_SELECTIONS = [[], ["species", "bill_length_mm"], ["species", "island"]]


def test_dpctgan_cost_does_not_reveal_the_count_of_complete_rows():
    """Attack: dpctgan's estimate for select_cols with 344 / 342 / 333 complete rows was ε 0.599128 / 0.602855 /
    0.620180, so the free estimate read out private counts (and changed when rows were lost or nulls added)."""
    penguin = private("penguin")
    damaged = penguin.frame.copy()
    damaged.loc[:40, "bill_length_mm"] = np.nan
    damaged = FrameConnector(damaged.iloc[60:])
    costs = {
        (tuple(columns), id(connector)): adapter(
            request("dpctgan", select_cols=columns, synth_params=GAN), connector
        ).cost()
        for columns in COMPLETE_ROW_SELECTIONS
        for connector in (penguin, damaged, twin_connector(load("penguin")))
    }
    assert len(set(costs.values())) == 1
    [cost] = set(costs.values())
    # the accountant at the published sampling rate 50/344, for 3 epochs of 344 // 50 steps
    assert cost.epsilon == spent_epsilon(sample_rate=50 / 344, sigma=5.0, steps=3 * 6, delta=1e-5)
    assert penguin.reads == damaged.reads == 0


@pytest.mark.parametrize("columns", COMPLETE_ROW_SELECTIONS)
def test_dpctgan_batch_size_refusal_depends_on_the_published_row_count_only(columns):
    """Attack: a batch_size of 340 failed ("sample_rate > 1") exactly when fewer than 340 complete rows
    were left, a second count oracle."""
    penguin = private("penguin")
    accepted = adapter(request("dpctgan", select_cols=columns, synth_params={"epochs": 1, "batch_size": 344}), penguin)
    assert accepted.cost().epsilon > 0
    with pytest.raises(InvalidQuery, match=r"batch_size'\] must be at most the dataset's published row count \(344\)"):
        adapter(request("dpctgan", select_cols=columns, synth_params={"epochs": 1, "batch_size": 346}), penguin).cost()
    assert penguin.reads == 0


@pytest.mark.slow
def test_mwem_model_does_not_hold_the_oldest_passengers_age():
    """Attack: with a fine BinTransformer on TITANIC Age, the returned MWEM model's mins_maxes held the exact
    top bin, the oldest passenger's age (80), and its synthetic histogram summed to the exact row count."""
    constraints = {"Age": {"type": "BinTransformer", "params": {"lower": 0.0, "upper": 100.0, "bins": 100}}}
    body = request("mwem", dataset_name="TITANIC", select_cols=["Sex", "Age"], constraints=json.dumps(constraints))
    model = returned_model(body, private("titanic"), "titanic")
    assert model.mins_maxes == {"0": (0, 1), "1": (0, 99)}
    [(synthetic, real, _)] = model.synthetic_histograms
    assert real is None
    assert synthetic.shape == (2, 100)
    assert synthetic.sum() == pytest.approx(887)  # the published length, not the 714 complete rows


@pytest.mark.slow
def test_dpctgan_model_holds_no_category_frequencies():
    """Attack: the returned dpctgan model kept the exact category frequencies of the training rows
    (_data_sampler._discrete_column_category_prob = 146/333, ...) and its per-epoch losses on real batches."""
    model = returned_model(request("dpctgan", synth_params=GAN), private("penguin"))
    sampler = model._data_sampler
    assert sampler._discrete_column_category_prob.size == 0
    assert (sampler._n_discrete_columns, len(sampler._data), sampler._rid_by_cat_cols) == (0, 0, [])
    assert model.loss_d_list == model.loss_g_list == []
    assert len(model.sample(5)) == 5


@pytest.mark.parametrize("synth_name", ["patectgan", "pategan", "dpgan"])
def test_pate_and_dpgan_are_refused_before_reading_data(synth_name):
    """Attack: patectgan's model kept teacher counts and category frequencies, and its spend (like pategan's)
    came from teacher votes and the row count; dpgan set its clipping bound from private gradient norms."""
    titanic = private("titanic")
    metadata = {**load("titanic"), "maxLength": 5000, "publicLength": 5000}  # pategan's small-data refusal aside
    body = request(synth_name, dataset_name="TITANIC", select_cols=["Sex"])
    with pytest.raises(InvalidQuery, match=f"^{synth_name} is not offered"):
        SmartnoiseSynthAdapter(body=body, connector=titanic, metadata=metadata).cost()
    assert titanic.reads == 0


def clamp_then_label(lower: float, upper: float) -> str:
    chain = [{"type": "ClampTransformer", "params": {"lower": lower, "upper": upper}}, {"type": "LabelTransformer"}]
    return json.dumps({"flipper_length_mm": {"type": "ChainTransformer", "params": chain}})


def test_clamp_then_label_constraint_is_no_range_oracle():
    """Attack: ClampTransformer(a, b) then LabelTransformer raised a KeyError exactly when a private value lay
    strictly between a and b, a free range oracle through the cost estimate."""
    penguin = private("penguin")
    refusals = set()
    for lower, upper in [(190.0, 200.0), (150.2, 150.4)]:  # flippers of 190 to 200 mm exist, of 150.3 mm none
        with pytest.raises(InvalidQuery) as refused:
            adapter(request("mwem", select_cols=["flipper_length_mm"], constraints=clamp_then_label(lower, upper)),
                    penguin).cost()  # fmt: skip
        refusals.add(refused.value.message.replace(str(lower), "a").replace(str(upper), "b"))
    assert len(refusals) == 1
    assert refusals.pop().startswith("constraints['flipper_length_mm']: ['LabelTransformer'] cannot encode")
    assert penguin.reads == 0


def test_custom_label_encoder_is_total_on_unknown_private_categories():
    """Attack: a custom LabelTransformer saw the raw private values, so the real fit failed (KeyError) exactly
    when a private row held a value outside the metadata's categories."""
    frame = private("penguin").frame.copy()
    frame["island"] = frame["island"].astype(object)
    frame.loc[:10, "island"] = "Atlantis"
    constraints = json.dumps({"island": {"type": "LabelTransformer", "params": {"nullable": False}}})
    body = request("mwem", select_cols=["species", "island"], constraints=constraints)
    samples = adapter(body, FrameConnector(frame)).run()["df_samples"]
    assert set(pd.DataFrame.from_dict(samples, orient="tight")["island"]) <= {"Torgersen", "Biscoe", "Dream"}


def test_constraint_giving_non_finite_values_is_refused():
    """Attack: a LogTransformer on a column whose domain reaches 0 turns a private 0 into -inf, which shows
    in the fitted model whether some private value is 0."""
    titanic = private("titanic")
    constraints = json.dumps({"Fare": {"type": "LogTransformer"}})
    with pytest.raises(InvalidQuery, match=r"^constraints\['Fare'\]: the transformer gives non-finite numbers"):
        adapter(request("dpctgan", select_cols=["Fare"], constraints=constraints, synth_params=GAN), titanic,
                "titanic").cost()  # fmt: skip
    assert titanic.reads == 0


@pytest.mark.slow
def test_mst_estimation_does_not_use_the_private_row_count():
    """Attack: MST fitted its graphical model with the exact count of complete rows as its known total
    (333 on PENGUIN), an exact statistic its samples depend on."""
    synth = adapter(request("mst", select_cols=["species", "island", "sex"]), private("penguin"))
    model = synth._fit()
    assert float(model.synthesizer.total) == 344.0  # the published length


@pytest.mark.parametrize("synth_name", ["mwem", "aim", "mst"])
def test_a_person_with_several_rows_is_charged_for_all_of_them(synth_name: str) -> None:
    """Attack: snsynth accounts for one row, so on a dataset where a person holds up to k rows (COVID: 52)
    a synthesizer charged ε released k·ε about each person."""
    metadata = {**load("penguin"), "maxContributions": 3}
    one_row = adapter(request(synth_name), twin_connector(load("penguin"))).cost()
    three_rows = SmartnoiseSynthAdapter(body=request(synth_name), connector=twin_connector(metadata),
                                        metadata=metadata).cost()  # fmt: skip
    assert three_rows.epsilon == pytest.approx(3 * one_row.epsilon)
    assert three_rows.delta == pytest.approx(3 * np.exp(2 * one_row.epsilon) * one_row.delta)
