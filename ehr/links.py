"""Links that leave the site in mail: built on SITE_URL, not on what a request claims.

A request's Host is the client's to choose within ALLOWED_HOSTS (any port, any name a
wildcard lets through): a password reset asked for with `Host: ehr.example.org:31337`
would mail the owner a link that hands its token to whoever listens there.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


def absolute_url(request: HttpRequest | None, path: str) -> str:
    """`path` on the site's public address; on the request's own while SITE_URL is unset."""
    if settings.SITE_URL:
        return settings.SITE_URL + path
    if request is None:
        return path
    return request.build_absolute_uri(path)


def mail_link_options(request: HttpRequest) -> dict:
    """Django's password reset form's `domain_override` and `use_https`, from SITE_URL."""
    if not settings.SITE_URL:
        return {"use_https": request.is_secure()}
    parts = urlsplit(settings.SITE_URL)
    return {"domain_override": parts.netloc, "use_https": parts.scheme == "https"}
