"""SmartNoise-SQL and budget scenarios of a researcher using lomas-client 0.5.1."""

from typing import Any

from client_session import client_error as _error
from client_session import connect as _client


def walkthrough(user: str, password: str, dataset: str, query: str, epsilon: float, delta: float) -> dict:
    """Everything a researcher does on a first visit, in order."""
    client = _client(user, password, dataset)
    out: dict[str, Any] = {}
    metadata = client.get_dataset_metadata()
    out["metadata_columns"] = [c["name"] for c in metadata["tableSchema"]["columns"]]
    dummy = client.get_dummy_dataset()
    out["dummy_shape"] = list(dummy.shape)
    out["dummy_head"] = dummy.head(3).astype(str).values.tolist()
    out["initial"] = client.get_initial_budget().model_dump()
    out["spent_before"] = client.get_total_spent_budget().model_dump()
    out["remaining_before"] = client.get_remaining_budget().model_dump()
    out["cost"] = client.smartnoise_sql.cost(query=query, epsilon=epsilon, delta=delta).model_dump()
    dummy_res = client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta, dummy=True)
    out["dummy_result_columns"] = list(dummy_res.result.df.columns)
    res = client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta)
    out["result"] = {"epsilon": res.epsilon, "delta": res.delta, "columns": list(res.result.df.columns)}
    out["result_rows"] = len(res.result.df)
    out["spent_after"] = client.get_total_spent_budget().model_dump()
    out["remaining_after"] = client.get_remaining_budget().model_dump()
    previous = client.get_previous_queries()
    out["previous"] = [
        {
            "dp_library": q["dp_library"],
            "query_str": q["client_input"]["query_str"],
            "epsilon": q["response"]["epsilon"],
        }
        for q in previous
    ]
    return out


def walkthrough_dummy(user: str, password: str, dataset: str, seed: int) -> dict:
    """The default-size dummy dataset for a seed, as text."""
    dummy = _client(user, password, dataset).get_dummy_dataset(seed=seed)
    return {"shape": list(dummy.shape), "rows": dummy.astype(str).values.tolist()}


def sql_query(user: str, password: str, dataset: str, query: str, epsilon: float, delta: float) -> dict:
    """One real SmartNoise-SQL query; the error the client raised, if any."""
    client = _client(user, password, dataset)
    try:
        res = client.smartnoise_sql.query(query=query, epsilon=epsilon, delta=delta)
    except Exception as exc:  # the client raises lomas errors as exceptions
        return _error(exc)
    return {"epsilon": res.epsilon, "delta": res.delta, "rows": len(res.result.df)}


def budgets(user: str, password: str, dataset: str) -> dict:
    """The three budget figures."""
    client = _client(user, password, dataset)
    try:
        return {
            "initial": client.get_initial_budget().model_dump(),
            "spent": client.get_total_spent_budget().model_dump(),
            "remaining": client.get_remaining_budget().model_dump(),
        }
    except Exception as exc:
        return _error(exc)


def sign_in(user: str, password: str, dataset: str) -> dict:
    """Only sign in."""
    try:
        _client(user, password, dataset)
    except Exception as exc:
        return _error(exc)
    return {"signed_in": True}
