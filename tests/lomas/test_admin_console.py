"""The console data owners read: readable amounts, pages linked to each other, jobs kept after collection."""

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.services import audit_record
from budgets.models import LedgerEntry
from budgets.services import budget_charge
from lomas.amounts import delta_short, epsilon_short
from queries.models import Job
from tests.lomas.conftest import archive_query

pytestmark = pytest.mark.django_db

TWENTY_EIGHT_PLACES = "0.5000000000000000000000000000"


@pytest.fixture
def charged(alice, penguin):
    job_uid = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=0.5, delta=1.2345678e-5, job_uid=job_uid)
    return alice.budgets.get(), job_uid


def test_amounts_are_short_with_the_exact_decimal_on_hover():
    assert epsilon_short(Decimal(TWENTY_EIGHT_PLACES)) == "0.5"
    assert epsilon_short(Decimal(1) / Decimal(3)) == "0.333333"
    assert delta_short(Decimal("0.0000100000")) == "1e-5"
    assert delta_short(Decimal("0.000012345678")) == "1.235e-5"
    assert delta_short(Decimal(0)) == epsilon_short(Decimal(0)) == "0"


def test_budget_page_and_ledger_show_short_amounts_never_28_places(admin_client, charged):
    budget, _ = charged
    pages = [
        admin_client.get(f"/admin/budgets/budget/{budget.pk}/change/").content.decode(),
        admin_client.get("/admin/budgets/budget/").content.decode(),
        admin_client.get("/admin/budgets/ledgerentry/").content.decode(),
    ]
    for page in pages:
        assert TWENTY_EIGHT_PLACES not in page
        assert "1.235e-5" in page
    assert 'title="0.5">0.5</span>' in pages[0] and 'title="0.000012345678">1.235e-5</span>' in pages[0]
    assert 'title="9.5">9.5</span>' in pages[0]  # remaining ε
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.CHARGE)
    detail = admin_client.get(f"/admin/budgets/ledgerentry/{entry.pk}/change/").content.decode()
    title = detail[detail.index("<title>") : detail.index("</title>")]
    assert TWENTY_EIGHT_PLACES not in title and "ε 0.5, δ 1.235e-5" in title
    assert "0.000012345678" in detail  # the exact decimal in the detail
    assert f'href="/admin/budgets/budget/{budget.pk}/change/"' in detail


def test_headers_keep_epsilon_and_delta_as_written(admin_client, charged):
    page = admin_client.get("/admin/budgets/budget/").content.decode()
    assert (
        "thead th, .module caption, .inline-group h2, .inline-group .tabular thead th { text-transform: none; }" in page
    )
    assert ">Initial ε</a>" in page and ">Remaining δ</span>" in page
    ledger = admin_client.get("/admin/budgets/ledgerentry/").content.decode()
    assert ">Amount ε</a>" in ledger and ">Amount δ</a>" in ledger and "\u0395" not in ledger


def test_the_header_names_the_product_and_oauth_models_are_off_the_index(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert ">lomas-django</a>" in page and "Django administration" not in page
    assert "<title>Console | lomas-django</title>" in page
    assert "oauth2_provider" not in page and "Access tokens" not in page


def test_push_to_dex_shows_only_when_dex_is_configured(admin_client, settings, alice):
    settings.LOMAS_DEX_GRPC_TARGET = ""
    assert "push_to_dex" not in admin_client.get("/admin/accounts/user/").content.decode()
    settings.LOMAS_DEX_GRPC_TARGET = "dex:5557"
    assert "push_to_dex" in admin_client.get("/admin/accounts/user/").content.decode()


def test_audit_log_is_newest_first(admin_client, admin_user):
    audit_record(actor=admin_user, action="test.first", target="one")
    audit_record(actor=admin_user, action="test.second", target="two")
    page = admin_client.get("/admin/accounts/auditentry/").content.decode()
    assert page.index("test.second") < page.index("test.first")


def test_archive_rows_show_cost_and_link_user_dataset_budget_and_job(admin_client, alice, penguin, charged):
    budget, job_uid = charged
    archive_query(alice, penguin, job_uid)
    page = admin_client.get("/admin/queries/queryarchive/").content.decode()
    assert 'title="0.5">0.5</span>' in page and ">1.235e-5</span>" in page
    assert f'href="/admin/accounts/user/{alice.pk}/change/"' in page
    assert f'href="/admin/datasets/dataset/{penguin.pk}/change/"' in page
    assert f'href="/admin/budgets/budget/{budget.pk}/change/"' in page
    assert f'href="/admin/queries/job/?q={job_uid}"' in page


def test_user_page_links_budgets_ledger_archive_and_jobs(admin_client, alice):
    page = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    for link in (
        f"/admin/budgets/budget/?user__id__exact={alice.pk}",
        f"/admin/budgets/ledgerentry/?budget__user__id__exact={alice.pk}",
        "/admin/queries/queryarchive/?user_name=Alice",
        f"/admin/queries/job/?user__id__exact={alice.pk}",
    ):
        assert link in page
        assert admin_client.get(link.replace("&amp;", "&")).status_code == 200


def test_a_collected_job_stays_listed_and_a_second_poll_still_answers_404(admin_client, alice_api, submit):
    body = {
        "dataset_name": "PENGUIN",
        "query_str": "SELECT COUNT(*) AS n FROM df",
        "epsilon": 1.0,
        "delta": 1e-5,
        "mechanisms": {},
        "postprocess": True,
    }
    uid = submit(alice_api, "estimate_smartnoise_sql_cost", body).json()["uid"]
    assert alice_api.get(f"/api/status/{uid}").status_code == 200
    second = alice_api.get(f"/api/status/{uid}")
    unknown = alice_api.get(f"/api/status/{uuid4()}")
    assert second.status_code == unknown.status_code == 404
    assert second.json() == unknown.json()
    assert Job.objects.get(uid=uid).collected_at is not None
    page = admin_client.get("/admin/queries/job/?collected=yes").content.decode()
    assert uid in page and "icon-yes.svg" in page


def test_deleting_a_revoked_budget_again_says_why_it_is_refused(admin_client, charged):
    budget, _ = charged
    assert admin_client.post(f"/admin/budgets/budget/{budget.pk}/delete/", {"post": "yes"}).status_code == 302
    response = admin_client.get(f"/admin/budgets/budget/{budget.pk}/delete/", follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "permission" not in page.lower().split("</header>")[-1]
    assert (
        "Not deleted: the access of Alice to PENGUIN is already revoked; its budget (ε 0.5 and δ 1.235e-5 spent)"
        in page
    )
    assert budget.__class__.objects.filter(pk=budget.pk).exists()
