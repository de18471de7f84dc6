"""Registry of DP library adapters, by wire library name.

Adapters are imported on first use so that web processes never load the DP
libraries. Adding a library: one module in this package and one line here.
"""

from django.utils.module_loading import import_string

from queries.libraries.base import DPAdapter

ADAPTERS: dict[str, str] = {
    "smartnoise_sql": "queries.libraries.smartnoise_sql.SmartnoiseSqlAdapter",
}


def get_adapter(library: str) -> type[DPAdapter]:
    """The adapter class for a wire library name."""
    return import_string(ADAPTERS[library])
