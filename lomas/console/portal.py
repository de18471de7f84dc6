"""The researcher portal: a signed-in user's datasets, budgets, metadata, dummy data and archived queries.

Everything shown is public to the researcher: budget figures, the metadata, dummy rows generated
from the metadata alone, and the user's own archived (already charged) releases.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from budgets.models import Budget
from budgets.selectors import access_check, budget_list_for_user, dataset_budget_to_wire
from datasets.dummy import make_dummy_frame
from datasets.models import Dataset
from datasets.selectors import dummy_check_rows
from lomas.amounts import amount_text
from lomas.console.examples import DUMMY_ROWS, DUMMY_SEED, library_body
from lomas.errors import LomasError
from queries.libraries import ADAPTERS
from queries.selectors import archive_list_for_user

# Longer strings in an archived result (fitted models, serialized frames) are shortened on the page.
RESULT_TEXT_LIMIT = 300


@dataclass(frozen=True)
class ColumnRow:
    """One column of a dataset's metadata, as the portal's table shows it."""

    name: str
    datatype: str
    bounds: str
    categories: str
    nullable: str


@dataclass(frozen=True)
class ArchiveRow:
    """One archived real query: when, which library, what it cost and what it released."""

    when: str
    library: str
    epsilon: str
    delta: str
    query: str
    result: str


@dataclass(frozen=True)
class DatasetPanel:
    """What the portal shows of one dataset the user may query."""

    name: str
    initial_epsilon: str
    initial_delta: str
    spent_epsilon: str
    spent_delta: str
    remaining_epsilon: str
    remaining_delta: str
    dataset_cap: str
    columns: list[ColumnRow]
    archives: list[ArchiveRow]


@login_required
def portal(request: HttpRequest) -> HttpResponse:
    """GET /portal/: the signed-in user's own page (an admin with no budget goes to the admin console)."""
    budgets = sorted(budget_list_for_user(user=request.user), key=lambda budget: budget.dataset.name)
    if request.user.is_staff and not budgets:
        return redirect("admin:index")
    panels = [_panel(budget) for budget in budgets]
    context = {
        "panels": panels,
        "snippet": _client_snippet(request, budgets[0].dataset if budgets else None),
        "dummy_rows": DUMMY_ROWS,
        "dummy_seed": DUMMY_SEED,
    }
    return render(request, "console/portal.html", context)


@login_required
def dummy_csv(request: HttpRequest, dataset_name: str) -> HttpResponse:
    """GET /portal/datasets/<name>/dummy.csv: seeded dummy rows generated from the metadata (never private rows)."""
    try:
        dataset = access_check(user=request.user, dataset_name=dataset_name)
        nb_rows = int(request.GET.get("rows", DUMMY_ROWS))
        seed = int(request.GET.get("seed", DUMMY_SEED))
        dummy_check_rows(nb_rows=nb_rows)
    except LomasError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
    except ValueError:
        return HttpResponse("rows and seed must be whole numbers.", status=400, content_type="text/plain")
    if nb_rows < 1 or seed < 0:
        return HttpResponse("rows must be positive and seed 0 or more.", status=400, content_type="text/plain")
    frame = make_dummy_frame(dataset.metadata, nb_rows=nb_rows, seed=seed)
    response = HttpResponse(frame.to_csv(index=False), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{dataset.name}-dummy.csv"'
    return response


def _panel(budget: Budget) -> DatasetPanel:
    dataset = budget.dataset
    archives = archive_list_for_user(user=budget.user, dataset=dataset, libraries=list(ADAPTERS))
    return DatasetPanel(
        name=dataset.name,
        initial_epsilon=amount_text(budget.initial_epsilon),
        initial_delta=amount_text(budget.initial_delta),
        spent_epsilon=amount_text(budget.spent_epsilon),
        spent_delta=amount_text(budget.spent_delta),
        remaining_epsilon=amount_text(budget.remaining_epsilon),
        remaining_delta=amount_text(budget.remaining_delta),
        dataset_cap=_dataset_cap_text(dataset),
        columns=[_column_row(column) for column in dataset.metadata["tableSchema"]["columns"]],
        archives=[_archive_row(record) for record in reversed(archives)],
    )


def _dataset_cap_text(dataset: Dataset) -> str:
    """The dataset-wide cap over all researchers together and what it leaves, or that there is none."""
    total = dataset_budget_to_wire(dataset=dataset)
    if total["epsilon"] is None:
        return "none: only your own budget limits your queries"
    return (
        f"ε {total['epsilon']:g} and δ {total['delta']:g} for all researchers together, "
        f"of which ε {total['remaining_epsilon']:g} and δ {total['remaining_delta']:g} remain"
    )


def _column_row(column: dict[str, Any]) -> ColumnRow:
    bounds = f"{column['minimum']} to {column['maximum']}" if "minimum" in column and "maximum" in column else ""
    nullable = column.get("nullableProportion", 0) or 0
    return ColumnRow(
        name=column["name"],
        datatype=column["datatype"],
        bounds=bounds,
        categories=", ".join(str(value) for value in column.get("keyValues", [])),
        nullable=f"yes (up to {nullable:.0%})" if nullable else "no",
    )


def _archive_row(record: dict[str, Any]) -> ArchiveRow:
    response = record["response"]
    request_body = {k: v for k, v in record["client_input"].items() if k != "dataset_name"}
    return ArchiveRow(
        when=datetime.fromtimestamp(record["timestamp"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        library=record["dp_library"],
        epsilon=str(response.get("epsilon", "")),
        delta=str(response.get("delta", "")),
        query=_shortened_json(request_body),
        result=_shortened_json(response.get("result", response.get("error"))),
    )


def _shortened_json(document: Any) -> str:
    """The document as indented JSON, with long strings (models, serialized frames) cut short."""

    def shorten(value: Any) -> Any:
        if isinstance(value, str) and len(value) > RESULT_TEXT_LIMIT:
            return f"{value[:RESULT_TEXT_LIMIT]}… ({len(value)} characters)"
        if isinstance(value, dict):
            return {key: shorten(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shorten(item) for item in value]
        return value

    return json.dumps(shorten(document), indent=2, ensure_ascii=False)


def _client_snippet(request: HttpRequest, dataset: Dataset | None) -> str:
    """lomas-client 0.5.1 code that connects to this server as the user, on one of their datasets."""
    app_url = request.build_absolute_uri("/api")
    discovery = request.build_absolute_uri(reverse("oauth2_provider:oidc-connect-discovery-info"))
    name = dataset.name if dataset else "DATASET_NAME"
    sql = library_body("smartnoise_sql", dataset.metadata) if dataset else {"query_str": "SELECT COUNT(*) FROM df"}
    delta = sql.get("delta", 0.0)
    return f"""# pip install lomas-client==0.5.1
from lomas_client import Client

client = Client(
    app_url="{app_url}",
    oidc_discovery_url="{discovery}",
    dataset_name="{name}",
    # Signs in with the device flow: open the URL it prints and approve. In a script, the password flow:
    # use_password_flow=True, user_name="{request.user.get_username()}", user_password="...",
)

client.get_remaining_budget()
client.get_dummy_dataset()
query = "{sql["query_str"]}"
client.smartnoise_sql.cost(query=query, epsilon=1.0, delta={delta!r})  # what it would cost
client.smartnoise_sql.query(query=query, epsilon=1.0, delta={delta!r}, dummy=True)  # on dummy data, free
client.smartnoise_sql.query(query=query, epsilon=1.0, delta={delta!r}).result.df  # the real, charged query
client.get_previous_queries()
"""
