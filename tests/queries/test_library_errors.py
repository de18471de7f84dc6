"""The one policy at every adapter's library boundary: library errors become ExternalLibraryError with the
library's text, lomas errors pass unchanged, and an interrupt (the job's time limit) is never caught."""

import pytest

from lomas.errors import ExternalLibraryError, InvalidQuery
from queries.libraries import ADAPTERS, get_adapter
from queries.libraries.base import twin_connector
from queries.time_limit import TimeLimitReached
from tests.conftest import demo_metadata
from tests.privacy.test_costs import request_bodies


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request):
    metadata = demo_metadata("penguin")
    _, body = request_bodies(metadata)[request.param]
    return get_adapter(request.param)(body=body, connector=twin_connector(metadata), metadata=metadata)


def test_a_library_error_becomes_an_external_library_error_with_its_text(adapter):
    failed = pytest.raises(ExternalLibraryError, match=r"^Failed: ValueError: no such column$")
    with failed as caught, adapter.library_errors("Failed: {reason}"):
        raise ValueError("no such column")
    assert caught.value.library == adapter.library


def test_a_lomas_error_and_the_time_limit_pass_unchanged(adapter):
    with pytest.raises(InvalidQuery, match=r"^Refused$"), adapter.library_errors("Failed: {reason}"):
        raise InvalidQuery("Refused")
    with pytest.raises(TimeLimitReached), adapter.library_errors("Failed: {reason}"):
        raise TimeLimitReached
