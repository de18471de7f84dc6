"""Users in Django admin: their lomas profile (query slot) inline."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import LomasProfile, User
from accounts.services import user_set_may_query


class LomasProfileInline(admin.StackedInline):
    model = LomasProfile
    can_delete = False
    fields = ("may_query",)


@admin.register(User)
class LomasUserAdmin(UserAdmin):
    inlines = (LomasProfileInline,)
    list_display = ("username", "email", "is_staff", "may_query", "is_active")
    list_filter = ("is_staff", "is_active", "lomas_profile__may_query")
    actions = ("release_query_lock",)

    @admin.display(boolean=True, description="may query")
    def may_query(self, user: User) -> bool | None:
        profile = getattr(user, "lomas_profile", None)
        return None if profile is None else profile.may_query

    @admin.action(description="Release the query lock of the selected users")
    def release_query_lock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_set_may_query(user=user, may_query=True)
        self.message_user(request, f"Released the query lock of {queryset.count()} user(s).", messages.SUCCESS)
