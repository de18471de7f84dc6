"""Registry of DP library adapters, by wire library name.

Adding a library: one module in this package and one line here; its routes
(/<library>_query, /dummy_<library>_query, /estimate_<library>_cost) follow.
"""

from django.utils.module_loading import import_string
from rest_framework.serializers import Serializer

from queries.libraries.base import DPAdapter

ADAPTERS: dict[str, str] = {
    "smartnoise_sql": "queries.libraries.smartnoise_sql.adapter.SmartnoiseSqlAdapter",
    "smartnoise_synth": "queries.libraries.smartnoise_synth.adapter.SmartnoiseSynthAdapter",
    "diffprivlib": "queries.libraries.diffprivlib.adapter.DiffPrivLibAdapter",
    "opendp": "queries.libraries.opendp.adapter.OpenDPAdapter",
}


def get_adapter(library: str) -> type[DPAdapter]:
    """The adapter class for a wire library name."""
    return import_string(ADAPTERS[library])


def get_request_serializer(library: str, kind: str) -> type[Serializer]:
    """The request shape of a library's route of that job kind."""
    return get_adapter(library).request_serializer(kind)


def warm_up_all() -> None:
    """Import every DP library (worker processes do it at start)."""
    for library in ADAPTERS:
        get_adapter(library).warm_up()
