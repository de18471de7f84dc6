"""The researcher portal (/portal/): where a researcher lands after signing in, and what it shows."""

import csv
import html
import io
from typing import Any
from uuid import uuid4

import pytest
from django.test import Client

from budgets.services import budget_charge, dataset_budget_set
from datasets.metadata import column_names
from lomas.amounts import amount_text
from queries.models import QueryArchive

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(client: Client) -> str:
    response = client.get("/portal/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_researcher_signing_in_lands_on_the_portal(alice):
    response = Client().post("/accounts/login/", {"username": "Alice", "password": "alice-password"}, follow=True)

    assert response.redirect_chain == [("/portal/", 302)]
    assert "<h1>My datasets</h1>" in response.content.decode()


def test_an_admin_without_a_budget_lands_on_the_admin_console(admin_user):
    response = Client().post("/accounts/login/", {"username": "admin", "password": "admin-password"}, follow=True)

    assert [url for url, _ in response.redirect_chain] == ["/portal/", "/admin/"]


def test_the_portal_asks_anonymous_visitors_to_sign_in():
    response = Client().get("/portal/")

    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/portal/")


def test_the_portal_shows_the_dataset_wide_cap_and_what_it_leaves(alice, penguin):
    assert "Dataset-wide cap: none: only your own budget limits your queries." in _page(_signed_in(alice))
    budget_charge(user=alice, dataset=penguin, epsilon=1, delta=0, job_uid=uuid4())
    dataset_budget_set(actor="admin", dataset=penguin, epsilon=4, delta=0.001)

    page = _page(_signed_in(alice))

    assert "Dataset-wide cap: ε 4 and δ 0.001 for all researchers together, of which ε 3 and δ 0.001 remain." in page


def test_the_portal_shows_initial_spent_and_remaining_budget(alice, penguin, submit):
    from tests.conftest import api_client_for

    api = api_client_for(alice)
    body = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 0.5, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
    assert submit(api, "smartnoise_sql_query", body).status_code == 202

    page = _page(_signed_in(alice))

    budget = alice.budgets.get()
    spent_delta, remaining_delta = amount_text(budget.spent_delta), amount_text(budget.remaining_delta)
    assert "<h2>PENGUIN</h2>" in page and budget.spent_delta > 0
    assert '<th>ε</th><td>10</td><td>0.5</td><td class="remaining-epsilon">9.5</td>' in page
    assert f'<th>δ</th><td>0.005</td><td>{spent_delta}</td><td class="remaining-delta">{remaining_delta}</td>' in page


def test_the_portal_shows_the_metadata_as_a_table(alice):
    page = _page(_signed_in(alice))

    assert "<th>Column</th><th>Type</th><th>Bounds</th><th>Categories</th><th>Nullable</th>" in page
    assert "<tr><td>species</td><td>string</td><td></td><td>Adelie, Chinstrap, Gentoo</td><td>no</td></tr>" in page
    assert "<tr><td>bill_length_mm</td><td>float</td><td>30.0 to 65.0</td><td></td><td>yes (up to 1%)</td></tr>" in page


def test_the_portal_lists_only_the_users_own_datasets(alice, bob):
    page = _page(_signed_in(bob))

    assert "<h2>IRIS</h2>" in page and "PENGUIN" not in page


def test_a_user_without_a_budget_is_told_so(db):
    from accounts.services import user_create

    carol = user_create(username="Carol", password="carol-password")

    assert 'id="no-dataset"' in _page(_signed_in(carol))


def test_the_portal_lists_archived_queries_with_their_cost_and_result(alice, submit):
    from tests.conftest import api_client_for

    api = api_client_for(alice)
    body = {"dataset_name": "PENGUIN", "query_str": "SELECT COUNT(*) AS n FROM df", "epsilon": 1.0, "delta": 1e-5,
            "mechanisms": {}, "postprocess": True}  # fmt: skip
    submit(api, "smartnoise_sql_query", body)

    page = _page(_signed_in(alice))

    archive = page[page.index('class="portal-archive"') :]
    charged = QueryArchive.objects.get().response
    assert f"<td>smartnoise_sql</td><td>{charged['epsilon']}</td><td>{charged['delta']}</td>" in archive
    assert '"query_str": "SELECT COUNT(*) AS n FROM df"' in archive
    assert '"columns": [\n      "n"\n    ]' in archive


def test_the_dummy_csv_holds_seeded_rows_with_the_metadata_columns(alice):
    client = _signed_in(alice)

    response = client.get("/portal/datasets/PENGUIN/dummy.csv", {"rows": 20, "seed": 3})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="PENGUIN-dummy.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == column_names(alice.budgets.get().dataset.metadata)
    assert rows[0][:2] == ["species", "island"]
    assert len(rows) == 21
    assert client.get("/portal/datasets/PENGUIN/dummy.csv", {"rows": 20, "seed": 3}).content == response.content


def test_the_dummy_csv_is_refused_without_access(alice, bob):
    response = _signed_in(bob).get("/portal/datasets/PENGUIN/dummy.csv")

    assert (response.status_code, response.content.decode()) == (403, "Bob does not have access to PENGUIN.")


@pytest.mark.parametrize(("query", "status"), [({"rows": "many"}, 400), ({"rows": 0}, 400), ({"rows": 10**9}, 400)])
def test_the_dummy_csv_refuses_bad_sizes(alice, query, status):
    assert _signed_in(alice).get("/portal/datasets/PENGUIN/dummy.csv", query).status_code == status


def test_the_snippet_connects_lomas_client_to_this_server(alice):
    page = _page(_signed_in(alice))

    snippet = page[page.index('class="portal-snippet"') :]
    assert 'app_url="http://testserver/api"' in snippet
    assert 'oidc_discovery_url="http://testserver/o/.well-known/openid-configuration"' in snippet
    assert 'dataset_name="PENGUIN"' in snippet and 'user_name="Alice"' in snippet
    assert 'query = "SELECT species, COUNT(*) AS nb_rows FROM df GROUP BY species"' in snippet
