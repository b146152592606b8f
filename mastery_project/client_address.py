"""The client address of a request, behind a known number of proxies."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def request_client_ip(request: HttpRequest) -> str | None:
    """The client address, trusting `X-Forwarded-For` only for `TRUSTED_PROXY_COUNT` hops.

    With N trusted proxies in front, the client is the Nth address from the right of the
    header; anything further left was written by the client and is not believed.
    """
    candidate = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None
