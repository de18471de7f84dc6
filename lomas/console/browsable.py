"""The browsable API: pages that never crash, POST forms holding a working example, job uids as links."""

import json
import logging
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user
from django.http import HttpRequest
from django.template import loader
from django.urls import reverse
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request

from lomas.errors import LomasError

if TYPE_CHECKING:  # DRF imports this module while it defines APIView (DEFAULT_RENDERER_CLASSES)
    from rest_framework.views import APIView

logger = logging.getLogger("lomas.errors")
FALLBACK_TEMPLATE = "rest_framework/lomas_fallback.html"


class LomasBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's browsable API, made to answer every request with its lomas status and body.

    The lomas permission classes raise lomas errors, which DRF's renderer does not expect while it
    decides which forms to show: here they hide the form. Should the page still fail, a plain page
    with the same status and body is rendered instead of an error page.
    """

    template = "rest_framework/api.html"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> str:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except Exception:
            logger.exception("the browsable API page failed; a plain page was sent")
            context = renderer_context or {}
            request, response = context["request"], context["response"]
            body = json.dumps(data, indent=4, default=str)
            page = {"status": response.status_code, "body": body, "path": request.get_full_path()}
            return loader.render_to_string(FALLBACK_TEMPLATE, page, request=request)

    def get_name(self, view: "APIView") -> str:
        """The page's title: the route's wire name (smartnoise_sql_query, status, ...)."""
        match = view.request.resolver_match
        return match.url_name if match is not None and match.url_name else super().get_name(view)

    def show_form_for_method(self, view: "APIView", method: str, request: Request, obj: Any) -> bool | None:
        try:
            return super().show_form_for_method(view, method, request, obj)
        except LomasError:
            return False

    def get_rendered_html_form(self, data: Any, view: "APIView", method: str, request: Request) -> Any:
        try:
            return super().get_rendered_html_form(data, view, method, request)
        except LomasError:
            return None

    def get_raw_data_form(self, data: Any, view: "APIView", method: str, request: Request) -> Any:
        form = super().get_raw_data_form(data, view, method, request)
        if form is not None and method == "POST":
            body = _example_for(request)
            if body is not None:
                form.fields["_content"].initial = json.dumps(body, indent=4)
        return form

    def get_context(self, data: Any, accepted_media_type: str, renderer_context: dict[str, Any]) -> dict[str, Any]:
        context = super().get_context(data, accepted_media_type, renderer_context)
        if not context["user"].is_authenticated:  # a route without authentication: the session still counts
            context["user"] = get_user(renderer_context["request"]._request)
        status_url = _job_status_url(data)
        context["job_status_url"] = status_url if status_url != renderer_context["request"].path else None
        return context


def _example_for(request: HttpRequest) -> dict[str, Any] | None:
    """An example body of this route on the first dataset the user has a budget on (None if they have none)."""
    from budgets.selectors import budget_list_for_user
    from lomas.console.examples import example_body

    match = request.resolver_match
    if match is None or not request.user.is_authenticated:
        return None
    budgets = sorted(budget_list_for_user(user=request.user), key=lambda budget: budget.dataset.name)
    if not budgets:
        return None
    dataset = budgets[0].dataset
    return example_body(match.url_name, dataset_name=dataset.name, metadata=dataset.metadata)


def _job_status_url(data: Any) -> str | None:
    """The status page of the job this answer is about, if it is a job."""
    if isinstance(data, dict) and isinstance(data.get("uid"), str) and "requested_by" in data:
        return reverse("status", kwargs={"uid": data["uid"]})
    return None
