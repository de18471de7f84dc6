"""A database, broker or cache that cannot be reached answers 503 in the lomas error shape, internals kept back."""

import pytest
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

from lomas.exception_handler import lomas_exception_handler


@pytest.mark.parametrize(
    "error",
    [
        OperationalError('connection to server at "10.0.0.5", port 5432 failed'),
        BrokerError("Error 111 connecting to 10.0.0.6:6379. Connection refused."),
        RedisConnectionError("Error 111 connecting to 10.0.0.6:6379. Connection refused."),
    ],
)
def test_an_unreachable_service_is_a_503_without_internals(error):
    response = lomas_exception_handler(error, {})

    assert response.status_code == 503
    assert response.data == {"type": "InternalServerException"}
    assert response.headers["Retry-After"] == "5"
