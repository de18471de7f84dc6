"""Every admin and console URL, opened as an anonymous visitor, a researcher and an admin, answers without a 5xx."""

from typing import Any
from uuid import uuid4

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from accounts.services import audit_record
from budgets.services import budget_charge
from queries.models import Job
from tests.lomas.conftest import archive_query

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_objects(alice: Any, bob: Any, penguin: Any, admin_user: Any) -> None:
    """One object of every model the admin shows: budgets with a charge, a job, an archive, audit entries."""
    job_uid = uuid4()
    budget_charge(user=alice, dataset=penguin, epsilon=0.5, delta=1e-5, job_uid=job_uid)
    Job.objects.create(uid=job_uid, user=alice, dataset=penguin, library="opendp", kind="query", request={})
    archive_query(alice, penguin, job_uid)
    audit_record(actor=admin_user, action="test.demo", target="PENGUIN")


def admin_urls() -> list[str]:
    """The admin index, each model's changelist, add and change page (first object), and the console pages."""
    urls = [reverse("admin:index"), reverse("admin:password_change")]
    for model in admin.site._registry:
        opts = model._meta
        urls += [
            reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            reverse(f"admin:{opts.app_label}_{opts.model_name}_add"),
        ]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            for view in ("change", "history", "delete"):
                urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[first.pk]))
    return urls


def console_urls(penguin: Any) -> list[str]:
    from budgets.models import Budget

    budget = Budget.objects.order_by("pk").first()
    return [
        "/admin/overview/",
        "/admin/collections/import/",
        "/admin/collections/export/users/",
        "/admin/collections/export/datasets/",
        "/admin/collections/export/datasets.zip",
        "/admin/collections/export/nothing/",
        "/admin/datasets/dataset/upload/",
        f"/admin/datasets/dataset/draft-metadata/?dataset_name=PENGUIN&path={penguin.path}",
        "/admin/datasets/dataset/draft-metadata/?dataset_name=X&path=../../etc/passwd",
        f"/admin/datasets/dataset/{penguin.pk}/new-version/",
        f"/admin/datasets/dataset/{penguin.pk}/columns/",
        f"/admin/budgets/budget/{budget.pk}/top-up/",
        "/admin/queries/job/?collected=yes",
        "/admin/queries/job/?status__exact=failed&finished_at__gte=2026-01-01+00:00:00",
        "/admin/budgets/ledgerentry/?library=opendp",
        "/admin/datasets/dataset/999999/new-version/",
    ]


@pytest.mark.parametrize("persona", ["anonymous", "researcher", "admin"])
def test_no_admin_url_answers_a_5xx(persona, demo_objects, alice, admin_user, penguin):
    client = Client(raise_request_exception=False)
    if persona == "researcher":
        client.force_login(alice)
    elif persona == "admin":
        client.force_login(admin_user)
    urls = admin_urls() + console_urls(penguin)
    assert len(urls) > 40
    answers = {url: client.get(url).status_code for url in urls}
    failures = {url: status for url, status in answers.items() if status >= 500}
    assert failures == {}
    if persona != "admin":  # every page asks a non-staff visitor to sign in
        assert {url: status for url, status in answers.items() if status not in (302, 404)} == {}
    else:
        assert answers["/admin/overview/"] == answers[reverse("admin:budgets_budget_changelist")] == 200
