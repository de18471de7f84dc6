"""The "Push to Dex" action of the User admin: asks a password per user, then pushes them.

The form page is `templates/push_to_dex.html`, next to this module (accounts/dex is no app,
so the template is compiled from its file rather than found by the template loaders).
"""

from functools import cache
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template import engines
from django.template.response import TemplateResponse

from accounts.dex.client import DexUnavailable
from accounts.dex.services import dex_user_push
from accounts.models import User
from accounts.selectors import user_is_lomas_user
from lomas.errors import LomasError

_TEMPLATE = Path(__file__).resolve().parent / "templates" / "push_to_dex.html"


@cache
def _template() -> Any:
    return engines["django"].from_string(_TEMPLATE.read_text(encoding="utf-8"))


class PushToDexForm(forms.Form):
    """One password per user, and whether existing Dex entries are replaced."""

    overwrite = forms.BooleanField(required=False, label="Update users Dex already has")

    def __init__(self, *args: Any, users: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for user in users:
            self.fields[f"password_{user.pk}"] = forms.CharField(
                label=f"Password of {user.username}",
                help_text=user.email or "No email: Dex cannot sign this user in.",
                strip=False,
                widget=forms.PasswordInput(render_value=False),
            )


def _push_all(request: HttpRequest, users: list[User], form: PushToDexForm) -> tuple[list[str], list[str]]:
    pushed: list[str] = []
    failed: list[str] = []
    for user in users:
        try:
            change = dex_user_push(
                actor=request.user,
                user=user,
                password=form.cleaned_data[f"password_{user.pk}"],
                overwrite=form.cleaned_data["overwrite"],
            )
        except DexUnavailable as exc:
            failed.append(exc.message)
            break
        except LomasError as exc:
            failed.append(f"{user.username}: {exc.message}")
        else:
            pushed.append(f"{user.username} ({'created' if change.action == 'create' else 'updated'})")
    return pushed, failed


@admin.action(description="Push to Dex", permissions=["change"])
def push_to_dex(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> Any:
    """Ask for the passwords, then create (or, if asked, update) the users' Dex entries."""
    users = [user for user in queryset.order_by("username") if user_is_lomas_user(user=user)]
    if not users:
        modeladmin.message_user(request, "None of the selected accounts is a lomas user.", messages.WARNING)
        return None
    if "apply" in request.POST:
        form = PushToDexForm(request.POST, users=users)
        if form.is_valid():
            pushed, failed = _push_all(request, users, form)
            if pushed:
                modeladmin.message_user(request, f"Pushed to Dex: {', '.join(pushed)}.", messages.SUCCESS)
            for failure in failed:
                modeladmin.message_user(request, failure, messages.ERROR)
            return None
    else:
        form = PushToDexForm(users=users)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Push to Dex",
        "opts": modeladmin.model._meta,
        "form": form,
        "users": users,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, _template(), context)
