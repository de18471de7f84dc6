"""Dex administration over gRPC: lomas users pushed to Dex's local password database (spec §7).

`protos/dex_api.proto` holds the Dex calls we use; `make dex-stubs` generates the Python stubs
into `generated/` (not committed). `client.py` speaks to Dex, `services.py` and `selectors.py`
hold the lomas-side operations, the `dex_*` management commands and the admin action call them.
"""
