"""Request examples of the OpenAPI schema that run on the demo set (`manage.py lomas_demo_setup`).

Researcher routes get the body the browsable API offers (lomas/console/examples.py) on PENGUIN,
built from the demo's own metadata; admin routes and path parameters name demo users and datasets.
"""

import json
from functools import cache
from typing import Any

from django.conf import settings

from lomas.console.examples import example_body

DEMO_DATASET = "PENGUIN"
DEMO_METADATA = settings.BASE_DIR / "datasets" / "demo" / "metadata" / "penguin.json"
# Path parameters, by name: a demo researcher with a PENGUIN budget, a demo dataset, a collection.
PARAMETER_EXAMPLES = {"username": "Dr.Antartica", "dataset_name": DEMO_DATASET, "collection_name": "queries_archive"}
ADMIN_EXAMPLES = {
    ("/api/users", "post"): {"id": {"name": "Carol", "email": "carol@example.com"}},
    ("/api/users/{username}/dataset", "patch"): {"dataset_name": "IRIS"},
    ("/api/users/{username}/dataset/del", "patch"): {"dataset_name": "BIRTHDAYS"},
    ("/api/users/{username}/dataset/budget", "patch"): {"dataset_name": DEMO_DATASET, "epsilon": 20.0, "delta": 0.01},
}


def add_demo_examples(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: demo examples on every request body and path parameter."""
    for path, item in result["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in PARAMETER_EXAMPLES:
                    parameter["example"] = PARAMETER_EXAMPLES[parameter["name"]]
            body = ADMIN_EXAMPLES.get((path, method)) or _researcher_example(path, method)
            content = operation.get("requestBody", {}).get("content", {})
            if body is not None and "application/json" in content:
                content["application/json"]["examples"] = {DEMO_DATASET: {"summary": "On the demo", "value": body}}
    return result


def _researcher_example(path: str, method: str) -> dict[str, Any] | None:
    if method != "post":
        return None
    return example_body(path.removeprefix("/api/"), dataset_name=DEMO_DATASET, metadata=_demo_metadata())


@cache
def _demo_metadata() -> dict[str, Any]:
    return json.loads(DEMO_METADATA.read_text(encoding="utf-8"))
