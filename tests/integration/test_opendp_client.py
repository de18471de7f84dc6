"""OpenDP polars plans built and sent by lomas-client 0.5.1 against a live server (PostgreSQL, Redis,
a Celery worker): costed, run on dummy and real data, charged exactly, read back; hostile plans refused."""

import json

import pytest

USERS = {query: (f"Dr.Polars-{query}", f"dr.polars-{query}-pw")
         for query in ("length", "grouped_mean", "filled_sum", "filtered_count", "values", "hostile")}  # fmt: skip


@pytest.fixture(scope="module")
def researchers(live_stack):
    """One researcher per scenario, each with a fresh PENGUIN budget of (10, 0.005)."""
    live_stack.add_researchers({name: (password, {"PENGUIN": (10, 0.005)}) for name, password in USERS.values()})
    return USERS


@pytest.mark.parametrize(
    ("query", "loss", "expected_cost", "columns"),
    [
        ("length", {"epsilon": 1.0}, {"epsilon": 1.0, "delta": 0.0}, ["len"]),
        ("grouped_mean", {"rho": 0.5, "delta": 1e-6}, {"epsilon": pytest.approx(5.3609, abs=1e-4), "delta": 1e-6},
         ["species", "bill_length_mm"]),
        ("filled_sum", {"epsilon": 1.0, "delta": 1e-5}, {"epsilon": 1.0, "delta": 1e-5}, ["flipper_length_mm"]),
        ("filtered_count", {"epsilon": 1.0}, {"epsilon": 1.0, "delta": 0.0}, ["len"]),
    ],
)  # fmt: skip
def test_opendp_plan_through_lomas_client(live_stack, researchers, query, loss, expected_cost, columns):
    user, password = researchers[query]

    out = live_stack.client(
        "scenarios_opendp:opendp_walkthrough", user=user, password=password, dataset="PENGUIN", query=query, loss=loss
    )

    print(f"\nopendp {query} {loss}: cost {out['cost']}, wall seconds {json.dumps(out['seconds'])}")
    assert out["spent_before"] == {"total_spent_epsilon": 0.0, "total_spent_delta": 0.0}
    assert out["cost"] == expected_cost
    assert (out["dummy"]["epsilon"], out["dummy"]["delta"]) == (out["cost"]["epsilon"], out["cost"]["delta"])
    assert (out["result"]["epsilon"], out["result"]["delta"]) == (out["cost"]["epsilon"], out["cost"]["delta"])
    for run in (out["dummy"], out["result"]):
        assert run["type"] == "opendp_polars"
        assert run["columns"] == columns
    # The spent budget is exactly the reported cost, to the last bit.
    assert out["spent_after"] == {
        "total_spent_epsilon": out["result"]["epsilon"],
        "total_spent_delta": out["result"]["delta"],
    }
    assert out["previous"] == [
        {
            "dp_library": "opendp",
            "plan_is_lazyframe": True,
            "plan_is_the_one_sent": True,
            "epsilon": out["result"]["epsilon"],
            "delta": out["result"]["delta"],
        }
    ]


def test_released_lengths_are_noisy_counts_of_the_real_and_the_dummy_rows(live_stack, researchers):
    user, password = researchers["values"]

    out = live_stack.client(
        "scenarios_opendp:opendp_walkthrough", user=user, password=password, dataset="PENGUIN", query="length",
        loss={"epsilon": 1.0},
    )  # fmt: skip

    # A count is a DP release (a person may be added or removed): at ε 1 its noise is a few units.
    [real], [dummy] = ([row["len"] for row in out[kind]["rows"]] for kind in ("result", "dummy"))
    assert abs(real - 344) < 40  # PENGUIN has 344 rows
    assert abs(dummy - 100) < 40  # the client's default dummy size


def test_a_pickled_udf_plan_is_refused_by_the_worker_and_charges_nothing(live_stack, researchers, tmp_path):
    user, password = researchers["hostile"]
    marker = tmp_path / "MARKER"

    out = live_stack.client(
        "scenarios_opendp:pickled_udf_query", user=user, password=password, dataset="PENGUIN", marker=str(marker)
    )

    assert out["error"] == "InvalidQueryException"
    assert out["message"].startswith("The plan embeds a Python object")
    assert out["marker_exists"] is False
    assert not marker.exists()
    budgets = live_stack.client("budgets", user=user, password=password, dataset="PENGUIN")
    assert budgets["spent"] == {"total_spent_epsilon": 0.0, "total_spent_delta": 0.0}
