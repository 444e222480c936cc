"""Project-wide middleware."""

import contextvars
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ehr.client_ip import client_ip

USER_AGENT_MAX = 256  # characters of User-Agent kept in the audit log


@dataclass(frozen=True)
class RequestContext:
    """What the audit log records about the request an action came from."""

    ip: str | None
    user_agent: str
    request_id: str


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def current_request_context() -> RequestContext | None:
    """Return the context of the request being served in this thread, if any."""
    return _current.get()


class RequestContextMiddleware:
    """Give each request an id and resolve its client IP once.

    The id is generated here, never taken from the client, and returned in
    `X-Request-ID` so a user's report of a problem can be matched to the logs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context = RequestContext(
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
            request_id=secrets.token_hex(16),
        )
        request.client_ip = context.ip
        request.request_id = context.request_id
        token = _current.set(context)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = context.request_id
        return response


class SecurityHeadersMiddleware:
    """Headers Django has no setting for: Permissions-Policy and CORP."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
