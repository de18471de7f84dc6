"""csvw-eo metadata: validation of uploaded documents and the wire dump."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from csvw_eo.metadata_structure import TableMetadata

from datasets.metadata import InvalidMetadata, column_dtypes, column_names, metadata_to_wire, validate_metadata

METADATA_DIR = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "metadata"
DEMO_FILES = sorted(METADATA_DIR.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((METADATA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def penguin_with(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(load("penguin"))
    change(document)
    return document


def column(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in document["tableSchema"]["columns"] if c["name"] == name)


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_every_demo_metadata_validates_unchanged(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))

    stored = validate_metadata(document)

    assert stored == document
    json.dumps(stored, allow_nan=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("maxContributions"), "Table field 'maxContributions' is required"),
        (lambda d: d.update(maxContributions=0), "Table field 'maxContributions' must be a positive integer, not 0"),
        (lambda d: d.update(maxContributions=True), "Table field 'maxContributions' must be a positive integer"),
        (lambda d: d.update(publicLength="344"), "Table field 'publicLength' must be a positive integer"),
        (lambda d: d["tableSchema"].update(columns=[]), "'tableSchema.columns' must be a non-empty list"),
        (lambda d: d.pop("tableSchema"), "'tableSchema.columns' must be a non-empty list"),
        (lambda d: column(d, "island").update(name="species"), "Duplicate column name 'species'"),
        (lambda d: column(d, "island").pop("name"), "Column 1 needs a non-empty string 'name'"),
        (lambda d: column(d, "sex").update(datatype="varchar"), "Column 'sex': datatype: Input should be 'string'"),
        (lambda d: column(d, "sex").pop("datatype"), "Column 'sex': field 'datatype' is required"),
        (lambda d: column(d, "body_mass_g").pop("maximum"), "Column 'body_mass_g': maximum must be set for datatype"),
        (
            lambda d: column(d, "body_mass_g").update(minimum="2000"),
            "Column 'body_mass_g': minimum and maximum must be",
        ),
        (lambda d: column(d, "body_mass_g").update(minimum=9000.0), "Column 'body_mass_g': minimum 9000.0 exceeds"),
        (lambda d: column(d, "sex").update(nullableProportion=1.5), "Column 'sex': 'nullableProportion' must be"),
        (
            lambda d: d["additionalInformation"][1].update(columnsInGroup=["species", "colour"]),
            "Column group 1 names unknown columns: ['colour']",
        ),
        (lambda d: d.update({"@type": "Column"}), "'@type' must be 'Table'"),
        (lambda d: column(d, "body_mass_g").update(maximum=float("nan")), "Metadata must be plain JSON"),
    ],
)
def test_a_broken_document_is_refused_with_a_precise_message(change: Any, message: str) -> None:
    with pytest.raises(InvalidMetadata, match="^" + re.escape(message)):
        validate_metadata(penguin_with(change))


def test_datetime_bounds_must_be_ordered_iso_strings() -> None:
    document = load("birthday")
    document["tableSchema"]["columns"][0].update(minimum="2050-01-01", maximum="1900-01-01")

    with pytest.raises(InvalidMetadata, match=r"^Column 'birthday': minimum '2050-01-01' exceeds maximum"):
        validate_metadata(document)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidMetadata, match="must be a JSON object"):
        validate_metadata([load("penguin")])  # type: ignore[arg-type]


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_wire_dump_round_trips_through_csvw_eo_as_the_client_does(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))

    wire = json.loads(json.dumps(metadata_to_wire(document), allow_nan=False))

    assert TableMetadata.model_validate(wire).to_dict() == TableMetadata.from_dict(document).to_dict()


def test_wire_dump_is_snake_case_table_metadata() -> None:
    wire = metadata_to_wire(load("penguin"))

    assert wire["max_contributions"] == 1
    assert wire["public_length"] == 344
    assert wire["table_type"] == "Table"
    assert [c["name"] for c in wire["columns"]][:2] == ["species", "island"]
    bill = wire["columns"][2]
    assert (bill["datatype"], bill["minimum"], bill["maximum"], bill["nullable_proportion"]) == (
        "float",
        30.0,
        65.0,
        0.01,
    )
    assert wire["columns"][0]["public_keys_values"][0] == {"predicate": {"partition_value": "Adelie"}}
    assert wire["column_groups"][0]["columns"] == ["species", "island"]
    assert "tableSchema" not in wire


def test_column_names_and_dtypes_follow_metadata_order() -> None:
    titanic = load("titanic")

    assert column_names(titanic) == ["Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Fare", "Survived"]
    assert column_dtypes(titanic) == {
        "Pclass": "Int64",
        "Name": "string",
        "Sex": "string",
        "Age": "float64",
        "SibSp": "Int64",
        "Parch": "Int64",
        "Fare": "float64",
        "Survived": "boolean",
    }
    assert column_dtypes(load("birthday")) == {"birthday": "datetime64[ns]"}
