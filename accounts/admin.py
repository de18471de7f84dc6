"""Users in Django admin, with their query slot inline; every change goes through audited services.

budgets/admin.py adds the user's budgets to this page.
"""

from typing import Any

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts.dex.admin_actions import push_to_dex
from accounts.models import AuditEntry, LomasProfile, User
from accounts.services import (
    EDITABLE_USER_FIELDS,
    audit_record,
    user_add,
    user_change_fields,
    user_change_may_query,
    user_delete,
)
from lomas.admin_display import ExplainedDeletion, ReadOnlyAdmin, pretty_json

admin.site.site_header = admin.site.site_title = "lomas-django"
admin.site.index_title = "Console"


class LomasProfileInline(admin.StackedInline):
    model = LomasProfile
    can_delete = False
    fields = ("may_query", "query_lease_job", "query_lease_until")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LomasUserCreationForm(UserCreationForm):
    """A new user: name, email, password and whether they are a lomas admin."""

    email = forms.EmailField(required=False)
    is_lomas_admin = forms.BooleanField(
        label="Lomas admin", required=False, help_text="Lomas admins manage the service (Django staff and superuser)."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class LomasUserChangeForm(UserChangeForm):
    """An existing user's account fields (the password has its own page, linked from here)."""

    is_lomas_admin = forms.BooleanField(label="Lomas admin", required=False)

    class Meta(UserChangeForm.Meta):
        model = User
        fields = ("username", "password", "first_name", "last_name", "email", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].disabled = True
        self.initial["is_lomas_admin"] = self.instance.is_staff and self.instance.is_superuser


@admin.register(User)
class LomasUserAdmin(ExplainedDeletion, UserAdmin):
    add_form = LomasUserCreationForm
    form = LomasUserChangeForm
    add_fieldsets = ((None, {"fields": ("username", "email", "password1", "password2", "is_lomas_admin")}),)
    fieldsets = (
        (None, {"fields": ("username", "password", "email", "is_lomas_admin", "is_active")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        ("Related pages", {"fields": ("related_links",)}),
    )
    readonly_fields = ("last_login", "date_joined", "related_links")
    inlines: tuple[type, ...] = (LomasProfileInline,)
    list_display = ("username", "email", "is_staff", "may_query", "is_active", "related_links")
    list_filter = ("is_staff", "is_active", "lomas_profile__may_query")
    actions = ("release_query_lock", push_to_dex)

    @admin.display(boolean=True, description="May query")
    def may_query(self, user: User) -> bool | None:
        profile = getattr(user, "lomas_profile", None)
        return None if profile is None else profile.may_query_now

    @admin.action(description="Release the query lock of the selected users")
    def release_query_lock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.filter(lomas_profile__isnull=False))
        for user in users:
            user_change_may_query(actor=request.user, user=user, may_query=True)
        self.message_user(request, f"Released the query lock of {len(users)} user(s).", messages.SUCCESS)

    @admin.display(description="related")
    def related_links(self, user: User) -> str:
        if user.pk is None:
            return "-"
        return format_html(
            '<a href="{}?user__id__exact={}">budgets</a> · <a href="{}?budget__user__id__exact={}">ledger</a> · '
            '<a href="{}?user_name={}">archive</a> · <a href="{}?user__id__exact={}">jobs</a> · '
            '<a href="{}?target={}">audit</a>',
            reverse("admin:budgets_budget_changelist"),
            user.pk,
            reverse("admin:budgets_ledgerentry_changelist"),
            user.pk,
            reverse("admin:queries_queryarchive_changelist"),
            user.username,
            reverse("admin:queries_job_changelist"),
            user.pk,
            reverse("admin:accounts_auditentry_changelist"),
            user.username,
        )

    def get_inlines(self, request: HttpRequest, obj: User | None) -> tuple[type, ...]:
        return self.inlines if obj is not None else ()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if not settings.LOMAS_DEX_GRPC_TARGET:
            actions.pop("push_to_dex", None)
        return actions

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            values = {field: data[field] for field in EDITABLE_USER_FIELDS if field in form.changed_data}
            user_change_fields(actor=request.user, user=obj, values=values)
            obj.refresh_from_db()
            return
        user = user_add(
            actor=request.user,
            username=data["username"],
            email=data.get("email", ""),
            password=data["password1"] or None,
            is_lomas_admin=data.get("is_lomas_admin", False),
        )
        obj.pk = user.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(actor=request.user, user=obj)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = User.objects.get(pk=id)
            audit_record(actor=request.user, action="user.set_password", target=user.username)
        return response


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail, read-only: who changed what, when, old → new."""

    list_display = ("created_at", "actor_name", "action", "target")
    ordering = ("-created_at", "-pk")
    list_filter = ("action", "actor_name", "created_at")
    search_fields = ("actor_name", "action", "target")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor_name", "action", "target", "details_formatted")
    readonly_fields = fields

    @admin.display(description="details")
    def details_formatted(self, entry: AuditEntry) -> str:
        return pretty_json(entry.details)


# The OAuth2 provider's records are managed by its flows, not by hand: off the admin index.
for _model in apps.get_app_config("oauth2_provider").get_models():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
