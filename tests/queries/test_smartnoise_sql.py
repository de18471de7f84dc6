"""The smartnoise-sql adapter on the demo data, through the real library."""

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from datasets.connectors.base import DataConnector
from datasets.connectors.dummy import DummyConnector
from datasets.connectors.local import PathConnector
from lomas.errors import ExternalLibraryError, InvalidQuery
from queries.libraries.smartnoise_sql.adapter import SmartnoiseSqlAdapter

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo"
COUNT_AND_MEAN = "SELECT COUNT(*) AS n, AVG(bill_length_mm) AS m FROM df"
GROUPED_COUNT = "SELECT species, COUNT(*) AS n FROM df GROUP BY species"
# snsql composes the deltas of a query's mechanisms as 1 - (1 - 1e-5)(1 - 5e-6).
DELTA_AT_1E_5 = 1.4999949999983109e-05


def load(name: str) -> dict[str, Any]:
    return json.loads((DEMO / "metadata" / f"{name}.json").read_text(encoding="utf-8"))


class CountingConnector(DataConnector):
    """The PENGUIN file, counting how often the adapter asks for its rows."""

    def __init__(self, source: DataConnector | None = None) -> None:
        self.source = source or PathConnector("penguin.csv", metadata=load("penguin"))
        self.reads = 0

    def get_pandas(self) -> pd.DataFrame:
        self.reads += 1
        return self.source.get_pandas()


class TracingConnector(CountingConnector):
    """The PENGUIN file, recording every statement the adapter's SQLite copy executes."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[str] = []

    def derived(self, name: str, build: Any) -> Any:
        sql_copy = build(self.get_pandas())
        with sql_copy.db_engine.connect() as connection:
            connection.connection.dbapi_connection.set_trace_callback(self.statements.append)
        return sql_copy


class FrameConnector(DataConnector):
    """A given frame, standing for private data the metadata does not describe faithfully."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def get_pandas(self) -> pd.DataFrame:
        return self.frame


def adapter(
    query: str,
    *,
    connector: DataConnector | None = None,
    metadata: dict[str, Any] | None = None,
    epsilon: float = 1.0,
    delta: float = 1e-5,
    **extra: Any,
) -> SmartnoiseSqlAdapter:
    body = {"query_str": query, "epsilon": epsilon, "delta": delta, "mechanisms": {}, **extra}
    return SmartnoiseSqlAdapter(
        body=body, connector=connector or CountingConnector(), metadata=metadata or load("penguin")
    )


def frame_of(result: dict[str, Any]) -> pd.DataFrame:
    """The result frame as lomas-client rebuilds it from the JSON body."""
    assert result["type"] == "smartnoise_sql"
    return pd.DataFrame.from_dict(json.loads(json.dumps(result["df"], allow_nan=False)), orient="tight")


def test_count_and_mean_costs_three_epsilons() -> None:
    cost = adapter(COUNT_AND_MEAN).cost()

    assert (cost.epsilon, cost.delta) == (3.0, DELTA_AT_1E_5)
    assert cost.delta == pytest.approx(1.5e-5, rel=1e-5)
    assert type(cost.epsilon) is float
    assert type(cost.delta) is float


def test_a_grouped_count_costs_one_epsilon() -> None:
    cost = adapter(GROUPED_COUNT).cost()

    assert (cost.epsilon, cost.delta) == (1.0, DELTA_AT_1E_5)


def test_cost_reads_no_data_and_run_reads_it_once() -> None:
    connector = CountingConnector()
    count_and_mean = adapter(COUNT_AND_MEAN, connector=connector, postprocess=True)

    count_and_mean.cost()
    assert connector.reads == 0
    frame = frame_of(count_and_mean.run())

    assert connector.reads == 1
    assert list(frame.columns) == ["n", "m"]
    assert len(frame) == 1
    assert 250 < frame["n"][0] < 450
    assert 30 < frame["m"][0] < 65


def test_a_cost_request_body_without_postprocess_runs_postprocessed() -> None:
    frame = frame_of(adapter(GROUPED_COUNT, epsilon=10.0).run())

    assert list(frame.columns) == ["species", "n"]
    assert set(frame["species"]) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_without_postprocess_only_the_first_raw_row_is_kept_as_res_columns() -> None:
    frame = frame_of(adapter(COUNT_AND_MEAN, postprocess=False).run())

    # AVG is released as a noisy SUM and COUNT, next to the noisy COUNT(*).
    assert list(frame.columns) == ["res_0", "res_1", "res_2"]
    assert len(frame) == 1


def test_mechanism_overrides_reach_the_library_and_other_keys_are_ignored() -> None:
    query = "SELECT SUM(bill_length_mm) AS s FROM df"

    default = adapter(query).cost()
    gaussian = adapter(query, mechanisms={"sum_float": "gaussian", "not_a_stat": "whatever"}).cost()

    assert default.delta == DELTA_AT_1E_5
    assert gaussian.delta > default.delta


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT COUNT(*), AVG(nope), SUM(bill_x) FROM df", "Query requested columns not found: ['bill_x', 'nope']"),
        ("SELECT AVG(d.wingspan) AS w FROM df AS d", "Query requested columns not found: ['wingspan']"),
        ("SELECT COUNT(*) FROM penguins", "Unknown table penguins: the dataset is the table df (write FROM df)."),
        ("SELECT COUNT(*) FROM DF", "Unknown table DF:"),
        ("SELEC COUNT(*) FROM df", "Invalid SQL query: Bad token SELEC"),
        ("SELECT COUNT(*) FROM df; SELECT COUNT(*) FROM df", "Expected exactly one SQL query, got 2."),
    ],
)
def test_a_query_the_dataset_cannot_answer_is_refused_before_reading_data(query: str, message: str) -> None:
    connector = CountingConnector()

    with pytest.raises(InvalidQuery, match="^" + re.escape(message)):
        adapter(query, connector=connector).validate()

    assert connector.reads == 0


def test_ordering_by_an_alias_is_not_an_unknown_column() -> None:
    adapter("SELECT species, COUNT(*) AS n FROM df GROUP BY species ORDER BY n").validate()


def test_an_unknown_mechanism_is_refused() -> None:
    with pytest.raises(InvalidQuery, match=r"^Unknown mechanism 'fancy' for count: expected one of laplace"):
        adapter(COUNT_AND_MEAN, mechanisms={"count": "fancy"}).validate()


@pytest.mark.parametrize(
    ("query", "mechanisms", "delta", "message"),
    [
        ("SELECT MIN(bill_length_mm) AS m FROM df", {}, 1e-5, "We don't know how to rewrite aggregate function"),
        ("SELECT AVG(species) AS m FROM df", {}, 1e-5, "Aggregations must be over numeric or boolean"),
        ("SELECT COUNT(*) AS n FROM df", {"threshold": "gaussian"}, 0.0, "Discrete gaussian mechanism delta must be"),
    ],
)
def test_a_library_refusal_is_an_external_library_error(
    query: str, mechanisms: dict[str, str], delta: float, message: str
) -> None:
    with pytest.raises(ExternalLibraryError, match=r"^Error obtaining cost: \w+: " + re.escape(message)) as caught:
        adapter(query, mechanisms=mechanisms, delta=delta).cost()

    assert caught.value.library == "smartnoise_sql"
    assert caught.value.to_wire()["library"] == "smartnoise_sql"


def test_a_nan_result_runs_once_and_goes_out_as_null() -> None:
    connector = TracingConnector()
    root = adapter("SELECT SQRT(COUNT(*) - 1000) AS r FROM df", connector=connector)

    result = root.run()

    assert result["df"]["columns"] == ["r"]
    assert result["df"]["data"] == [[None]]
    assert len(connector.statements) == 1


def test_a_null_group_key_is_not_a_nan_result() -> None:
    # At epsilon 100 the 11 penguins of unknown sex pass the censoring threshold.
    frame = frame_of(adapter("SELECT sex, COUNT(*) AS n FROM df GROUP BY sex", epsilon=100.0).run())

    assert frame["sex"].isna().sum() == 1
    assert frame["n"].notna().all()


@pytest.mark.parametrize(
    ("query", "postprocess", "columns"),
    [
        ("SELECT COUNT(*) AS n FROM df WHERE bill_length_mm > 1000", True, ["n"]),
        ("SELECT species, COUNT(*) AS n FROM df WHERE bill_length_mm > 1000 GROUP BY species", True, ["species", "n"]),
        (
            "SELECT species, COUNT(*) AS n FROM df WHERE bill_length_mm > 1000 GROUP BY species",
            False,
            ["res_0", "res_1"],
        ),
    ],
)
def test_a_query_without_rows_answers_an_empty_table(query: str, postprocess: bool, columns: list[str]) -> None:
    frame = frame_of(adapter(query, postprocess=postprocess).run())

    assert list(frame.columns) == columns
    assert frame.empty


def test_every_sum_reaches_sqlite_as_total_and_abs_is_total() -> None:
    connector = TracingConnector()
    query = "SELECT AVG(body_mass_g) AS m FROM df WHERE ABS(-9223372036854775807 - 1) > bill_length_mm"

    frame = frame_of(adapter(query, connector=connector).run())

    [statement] = connector.statements
    assert "TOTAL(body_mass_g)" in statement
    assert "SUM(" not in statement
    assert 3000 < frame["m"][0] < 6000


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT COUNT(*) AS n FROM df WHERE SQUARE(bill_length_mm) > 1", "SQUARE cannot be used in this query"),
        ("SELECT COUNT(*) AS n FROM df WHERE CONCAT(sex, 'x') = 'x'", "CONCAT cannot be used in this query"),
        ("SELECT COUNT(*) AS n FROM df WHERE RAND() > 0.5", "RAND() cannot be used in this query"),
        ("SELECT COUNT(*) AS n FROM df WHERE bill_length_mm <=> 1", "The operator <=> cannot be used in this query"),
        ("SELECT COUNT(*) AS n FROM df WHERE COALESCE(sex) = 'x'", "COALESCE cannot be used in this query"),
    ],
)
def test_what_sqlite_cannot_run_is_refused_before_reading_data(query: str, message: str) -> None:
    connector = CountingConnector()

    with pytest.raises(InvalidQuery, match="^" + re.escape(message)):
        adapter(query, connector=connector).validate()

    assert connector.reads == 0


def test_a_function_sqlite_lacks_is_admitted_where_snsql_evaluates_it_on_the_noisy_result() -> None:
    frame = frame_of(adapter("SELECT SQUARE(COUNT(*)) AS s FROM df", epsilon=10.0).run())

    assert 300**2 < frame["s"][0] < 400**2


def test_an_execution_error_that_dummy_data_reproduces_is_explained() -> None:
    # The cost is fine, but censoring rare rows needs delta > 0 at execution time.
    with pytest.raises(ExternalLibraryError, match=r"^Error executing query: ValueError: censor_dims requires delta"):
        adapter("SELECT COUNT(*) AS n FROM df", delta=0.0).run()


def test_an_execution_error_on_data_the_metadata_misdescribes_is_an_external_library_error() -> None:
    # Private rows the metadata calls dates, but that hold text: snsql fails converting the group key.
    # The service answers such a failure on private data with one fixed message, charged.
    private = FrameConnector(pd.DataFrame({"birthday": ["secret-value-123"] * 50}))
    birthday_count = adapter(
        "SELECT birthday, COUNT(*) AS n FROM df GROUP BY birthday", connector=private, metadata=load("birthday")
    )

    with pytest.raises(ExternalLibraryError, match=r"^Error executing query: ValueError: Error converting output row"):
        birthday_count.run()


def test_dummy_queries_run_on_the_seeded_dummy_frame() -> None:
    titanic = load("titanic")
    dummy = DummyConnector(titanic, 100, 42)
    query = "SELECT Sex, COUNT(*) AS n, AVG(Age) AS a FROM df GROUP BY Sex"

    cost = adapter(query, connector=dummy, metadata=titanic, epsilon=10.0).cost()
    frame = frame_of(adapter(query, connector=dummy, metadata=titanic, epsilon=10.0).run())

    assert cost.epsilon == 30.0
    assert list(frame.columns) == ["Sex", "n", "a"]


def test_the_real_run_reuses_the_parse_and_rewrite_of_its_twin_in_the_same_request_only() -> None:
    from queries.libraries.base import request_scope, twin_connector

    with request_scope():
        twin = adapter(GROUPED_COUNT, connector=twin_connector(load("penguin")), postprocess=True)
        twin.cost()
        twin.rehearse()
        real = adapter(GROUPED_COUNT, postprocess=True)
        frame = frame_of(real.run())
        assert real._parsed_query is twin._parsed_query
        assert real._rewritten is twin._rewritten
        assert adapter(GROUPED_COUNT, epsilon=0.5)._rewritten is not twin._rewritten
    with request_scope():
        next_request = adapter(GROUPED_COUNT, postprocess=True)
        next_request.validate()
    assert next_request._parsed_query is not twin._parsed_query
    assert next_request._rewritten is not twin._rewritten
    assert sorted(frame["species"]) == ["Adelie", "Chinstrap", "Gentoo"]


@pytest.mark.parametrize(
    ("lower", "upper", "contributions", "epsilon"),
    [
        (0.0, 1.0, 1, 0.5),
        (1000.0, 100000.0, 1, 0.25),
        (-5.0, 3.0, 2, 1.0),
        (-10.0, -2.0, 3, 0.1),
        (30.0, 65.0, 1, 0.333),
    ],
)
def test_the_laplace_scale_is_one_opendp_accepts_and_snsqls_within_2e_8(
    lower: float, upper: float, contributions: int, epsilon: float
) -> None:
    import opendp.prelude as dp
    from snsql import Mechanism
    from snsql.sql._mechanisms import Laplace

    from queries.libraries.smartnoise_sql.adapter import _scale_cached_mechanisms

    searched = Laplace(epsilon, lower=lower, upper=upper, max_contrib=contributions).scale
    scale = _scale_cached_mechanisms()[Mechanism.laplace](
        epsilon, lower=lower, upper=upper, max_contrib=contributions
    ).scale

    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    bounded_sum = (domain, dp.symmetric_distance()) >> dp.t.then_clamp(bounds=(lower, upper)) >> dp.t.then_sum()
    assert (bounded_sum >> dp.m.then_laplace(scale)).check(contributions, epsilon)
    assert searched <= scale <= searched * (1 + 2e-8)


def test_bounds_snsql_refuses_are_still_refused_by_its_search() -> None:
    from snsql import Mechanism

    from queries.libraries.smartnoise_sql.adapter import _scale_cached_mechanisms

    with pytest.raises(ValueError, match="Noise scale is too large"):
        _scale_cached_mechanisms()[Mechanism.laplace](1.0, lower=0.0, upper=1e300, max_contrib=1)
