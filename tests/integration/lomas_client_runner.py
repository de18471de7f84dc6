"""Runs one researcher scenario with the published lomas-client 0.5.1, in its own virtualenv.

    python lomas_client_runner.py [MODULE:]FUNCTION '{"json": "arguments"}'

MODULE is a scenarios module of this folder (default scenarios_sql); the function's
return value is printed as one JSON object. The server under test is named by
LOMAS_CLIENT_APP_URL and LOMAS_CLIENT_OIDC_DISCOVERY_URL.
"""

import importlib
import json
import sys

if __name__ == "__main__":
    target, arguments = sys.argv[1], json.loads(sys.argv[2])
    module_name, _, function_name = target.rpartition(":")
    module = importlib.import_module(module_name or "scenarios_sql")
    print(json.dumps(getattr(module, function_name)(**arguments)))
