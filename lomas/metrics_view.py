"""GET /metrics: the Prometheus exposition of this host, for allowed addresses or the metrics token."""

import hmac
from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from lomas.metrics import exposition


def metrics_allowed(request: HttpRequest) -> bool:
    """The bearer token matches LOMAS_METRICS_TOKEN, or the client address is in LOMAS_METRICS_ALLOWED_IPS."""
    token = settings.LOMAS_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer ") :], token):
        return True
    try:
        client = ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.LOMAS_METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics of every lomas process of this host, and the job queue depths."""
    if not metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
