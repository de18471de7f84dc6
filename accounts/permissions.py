"""Who may call which API route."""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.views import APIView

from accounts.bootstrap import BootstrapToken
from accounts.selectors import user_require_lomas_user
from lomas.errors import ADMIN_ONLY, BAD_TOKEN, UNKNOWN_USER, UnauthorizedAccess


class IsLomasUser(BasePermission):
    """An authenticated account that is a lomas user (spec §7: unknown user → 403)."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        if isinstance(request.auth, BootstrapToken):  # an admin identity that is no lomas user (spec §7)
            raise UnauthorizedAccess(UNKNOWN_USER.format(user=request.user.get_username()))
        if not (request.user and request.user.is_authenticated):
            raise UnauthorizedAccess(BAD_TOKEN)
        user_require_lomas_user(user=request.user)
        return True


class IsLomasAdmin(IsLomasUser):
    """A lomas user who is a lomas admin (staff)."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        if isinstance(request.auth, BootstrapToken):  # spec §7: the bootstrap identity passes the admin scope
            return True
        super().has_permission(request, view)
        if not request.user.is_staff:
            raise UnauthorizedAccess(ADMIN_ONLY)
        return True
