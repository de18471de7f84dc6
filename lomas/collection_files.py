"""Reading a YAML collection file (spec §4.5): the list under its `users` or `datasets` key."""

from typing import Any

import yaml

from lomas.errors import InvalidQuery


def collection_read_yaml(text: str | bytes, *, key: str) -> list[Any]:
    """The list under `key` ("users" or "datasets") of a YAML collection file, or InvalidQuery."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidQuery(f"Invalid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise InvalidQuery(f"Invalid collection: the file must hold a '{key}' list.")
    return document[key]
