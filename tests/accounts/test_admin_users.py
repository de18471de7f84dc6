"""Users in Django admin: creation, budgets inline, account changes and deletion, each one audited."""

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.models import AuditEntry, LomasProfile, User
from budgets.models import Budget
from budgets.services import budget_charge

pytestmark = pytest.mark.django_db


def add_user(client, **fields):
    data = {
        "username": "Carol",
        "email": "carol@example.com",
        "password1": "carol-Pass-42",
        "password2": "carol-Pass-42",
    }
    return client.post("/admin/accounts/user/add/", data | fields)


def change_user(client, user, *, budgets=(), **fields):
    """Post the user change form as a browser does: profile inline, existing budget rows, then new rows."""
    profile = LomasProfile.objects.get(user=user)
    existing = list(Budget.objects.filter(user=user).order_by("dataset__name"))
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on",
        "lomas_profile-TOTAL_FORMS": "1",
        "lomas_profile-INITIAL_FORMS": "1",
        "lomas_profile-0-id": str(profile.pk),
        "lomas_profile-0-user": str(user.pk),
        "budgets-TOTAL_FORMS": str(len(existing) + len(budgets)),
        "budgets-INITIAL_FORMS": str(len(existing)),
    }
    for index, budget in enumerate(existing):
        data |= {
            f"budgets-{index}-id": str(budget.pk),
            f"budgets-{index}-user": str(user.pk),
            f"budgets-{index}-initial_epsilon": f"{budget.initial_epsilon.normalize():f}",
            f"budgets-{index}-initial_delta": f"{budget.initial_delta.normalize():f}",
        }
    for offset, row in enumerate(budgets):
        index = len(existing) + offset
        data |= {f"budgets-{index}-{key}": str(value) for key, value in row.items()}
    return client.post(f"/admin/accounts/user/{user.pk}/change/", data | fields)


def test_creating_a_user_makes_a_researcher_who_may_query_audited(admin_client):
    response = add_user(admin_client)

    carol = User.objects.get(username="Carol")
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/accounts/user/{carol.pk}/change/")
    assert carol.email == "carol@example.com" and carol.check_password("carol-Pass-42")
    assert not carol.is_staff and LomasProfile.objects.get(user=carol).may_query
    entry = AuditEntry.objects.get(action="user.add")
    assert (entry.actor_name, entry.target, entry.details) == ("admin", "Carol", {"email": "carol@example.com"})


def test_the_lomas_admin_flag_makes_a_staff_superuser(admin_client):
    add_user(admin_client, is_lomas_admin="on")
    carol = User.objects.get(username="Carol")
    assert carol.is_staff and carol.is_superuser
    assert AuditEntry.objects.get(action="user.add").details["admin"] is True


def test_add_page_asks_for_name_email_password_and_admin_flag(admin_client):
    page = admin_client.get("/admin/accounts/user/add/").content.decode()
    for name in ("username", "email", "password1", "password2", "is_lomas_admin"):
        assert f'name="{name}"' in page
    assert 'name="budgets-0-dataset"' not in page


def test_a_budget_added_inline_is_granted_through_the_audited_service(admin_client, penguin):
    add_user(admin_client)
    carol = User.objects.get(username="Carol")
    page = admin_client.get(f"/admin/accounts/user/{carol.pk}/change/").content.decode()
    assert 'name="budgets-0-dataset"' in page and ">PENGUIN</option>" in page

    response = change_user(
        admin_client,
        carol,
        budgets=[{"dataset": penguin.pk, "initial_epsilon": "1.0", "initial_delta": "0.00001", "user": carol.pk}],
    )

    assert response.status_code == 302
    budget = Budget.objects.get(user=carol, dataset=penguin)
    assert (budget.initial_epsilon, budget.initial_delta) == (Decimal(1), Decimal("0.00001"))
    assert AuditEntry.objects.get(action="budget.grant").details["initial_epsilon"] == 1.0


def test_inline_budgets_show_spent_and_remaining_and_refuse_initial_below_spent(admin_client, alice, penguin):
    budget_charge(user=alice, dataset=penguin, epsilon=4, delta=0, job_uid=uuid4())
    page = " ".join(admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode().split())
    amount = '<td class="field-{}_epsilon_text"> <p><span class="lomas-amount" title="{}">{}</span></p> </td>'
    assert amount.format("spent", 4, 4) in page and amount.format("remaining", 6, 6) in page

    budget = Budget.objects.get(user=alice)
    response = change_user(admin_client, alice, **{"budgets-0-initial_epsilon": "3"})

    assert response.status_code == 200
    assert "The initial budget cannot be set below the spent budget (epsilon 4, delta 0)." in response.content.decode()
    budget.refresh_from_db()
    assert budget.initial_epsilon == Decimal(10)


def test_changing_the_email_is_audited_old_to_new(admin_client, alice):
    response = change_user(admin_client, alice, email="alice@lomas.example")
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@lomas.example"
    entry = AuditEntry.objects.get(action="user.update")
    assert entry.details == {"email": {"old": "alice@example.com", "new": "alice@lomas.example"}}


def test_changing_the_password_on_its_page_is_audited(admin_client, alice):
    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"password1": "new-Alice-pass-1", "password2": "new-Alice-pass-1", "usable_password": "true"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("new-Alice-pass-1")
    assert AuditEntry.objects.get(action="user.set_password").target == "Alice"


def test_deleting_a_user_tombstones_them_and_is_audited_with_their_budgets(admin_client, alice):
    page = admin_client.get(f"/admin/accounts/user/{alice.pk}/delete/").content.decode()
    assert "deactivated, their budgets revoked and their ledgers kept" in page
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active and alice.deleted_at is not None and alice.budgets.get().is_revoked
    entry = AuditEntry.objects.get(action="user.delete")
    assert entry.actor_name == "admin" and entry.details["budgets"][0]["dataset"] == "PENGUIN"


def test_audit_trail_is_shown_read_only(admin_client, alice):
    change_user(admin_client, alice, email="alice@lomas.example")
    entry = AuditEntry.objects.get()
    assert "user.update" in admin_client.get("/admin/accounts/auditentry/").content.decode()
    page = admin_client.get(f"/admin/accounts/auditentry/{entry.pk}/change/").content.decode()
    assert '<pre class="lomas-json"' in page and "alice@lomas.example" in page
    assert 'name="_save"' not in page
