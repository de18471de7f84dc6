"""lomas-client 0.5.1 against the server's abuse limits."""

from client_session import client_error as _error
from client_session import connect as _client


def cost_estimate(user: str, password: str, dataset: str, query: str) -> dict:
    """One SmartNoise-SQL cost estimate; the error the client raised, if any."""
    client = _client(user, password, dataset)
    try:
        cost = client.smartnoise_sql.cost(query=query, epsilon=1.0, delta=1e-5)
    except Exception as exc:  # the client raises lomas errors as exceptions
        return _error(exc)
    return cost.model_dump()
