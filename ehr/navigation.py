"""Audited reads start only from this site: never from a link on another one.

Reading an account's or a patient's history, exporting the audit log, and
opening the identity details of a break-glass grant are GET requests that write
an audit event ("... viewed the history of ...").
Session cookies are SameSite=Lax, so they travel with a top-level navigation
from any site: a page elsewhere could send a signed-in compliance officer's
browser to such an address, and the log would then say, truly but misleadingly,
that the officer read that patient's history or exported the log.

Browsers say where a request comes from in `Sec-Fetch-Site`, a header no page
can set: `same-origin` for a link on this site's pages, `none` for an address
typed or a bookmark. Anything else (`cross-site`; `same-site`, a sibling
subdomain that may be someone else's) gets a page that names the action and
offers to continue from here; nothing happens and nothing is recorded until the
user does. A browser too old to send the header is let through as before.
"""

from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FROM_THIS_SITE = {"same-origin", "none"}


def from_this_site(label: str):
    """Run the view only for a request that started on this site (or was typed).

    `label` completes "Continue to ..." on the page shown otherwise.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            site = request.headers.get("Sec-Fetch-Site")
            if site is None or site in FROM_THIS_SITE:
                return view(request, *args, **kwargs)
            context = {"label": label, "url": request.get_full_path()}
            return render(request, "cross_site.html", context)

        return wrapper

    return decorator
