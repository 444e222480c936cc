"""Break-glass screens: opening and using a grant (agents), reviewing them (compliance
officers and platform auditors)."""

import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import reauth
from accounts.reauth import recent_auth_required
from break_glass import services
from break_glass.forms import BreakGlassOpenForm, BreakGlassReviewForm
from break_glass.models import BreakGlassGrant
from ehr.navigation import from_this_site
from ehr.policies import (
    AuditScope,
    allowed_only,
    audit_scope,
    can_open_break_glass,
    can_review_break_glass,
    can_use_support_console,
)
from support_pin import selectors as pin_selectors


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
@allowed_only(can_use_support_console)
def break_glass_open(request: HttpRequest, account_id: int) -> HttpResponse:
    """Refuse an account break-glass never opens at once; otherwise confirm, then open."""
    account = pin_selectors.console_account(account_id=account_id)
    if account is None:
        raise Http404
    if not can_open_break_glass(request.user, account):
        context = {"account": account, "own_account": account.pk == request.user.pk}
        return render(request, "break_glass/refused.html", context, status=403)
    return _open(request, account)


@recent_auth_required(label="open break-glass access to this account")
def _open(request: HttpRequest, account) -> HttpResponse:
    form = BreakGlassOpenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grant = services.break_glass_open(
                acting_user=request.user,
                account=account,
                justification=form.cleaned_data["justification"],
                minutes=form.cleaned_data["minutes"],
                ip=request.client_ip,
            )
        except ValidationError as error:
            form.add_error("justification", error)
        else:
            return redirect("break_glass_grant", grant_id=grant.pk)
    status = 400 if form.errors else 200
    return render(
        request, "break_glass/open.html", {"form": form, "account": account}, status=status
    )


def _active_grant(request: HttpRequest, grant_id: int) -> BreakGlassGrant | None:
    grant = services.break_glass_active(acting_user=request.user, grant_id=grant_id)
    if grant is None:
        messages.error(request, "This break-glass access is over (or was never yours).")
    return grant


@login_required
@never_cache
@require_GET
@allowed_only(can_use_support_console)
@from_this_site("view the identity details this break-glass access opens")
def break_glass_grant(request: HttpRequest, grant_id: int) -> HttpResponse:
    """The identity details an open grant shows its agent (viewing them is audited, so only
    from a page of this site: ehr/navigation.py)."""
    grant = _active_grant(request, grant_id)
    if grant is None:
        return redirect("support_console")
    identity = services.break_glass_identity(
        grant=grant, acting_user=request.user, ip=request.client_ip
    )
    # Whole minutes, rounded up: a grant opened for 15 minutes reads 15 at first, and
    # "1 more minute" means less than a minute is left, never that none is.
    minutes_left = max(0, math.ceil((grant.expires_at - timezone.now()).total_seconds() / 60))
    response = render(
        request,
        "break_glass/grant.html",
        {"grant": grant, "identity": identity, "minutes_left": minutes_left},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@allowed_only(can_use_support_console)
def break_glass_rotate_pin(request: HttpRequest, grant_id: int) -> HttpResponse:
    """Replace the account's Support PIN under an open grant and tell its owner."""
    grant = _active_grant(request, grant_id)
    if grant is None:
        return redirect("support_console")
    services.break_glass_rotate_pin(grant=grant, acting_user=request.user, ip=request.client_ip)
    messages.success(request, "The Support PIN was replaced and the owner emailed.")
    return redirect("break_glass_grant", grant_id=grant.pk)


@login_required
@require_POST
@allowed_only(can_use_support_console)
def break_glass_end(request: HttpRequest, grant_id: int) -> HttpResponse:
    """End the agent's open access now, when the caller has been helped."""
    grant = _active_grant(request, grant_id)
    if grant is None:
        return redirect("support_console")
    services.break_glass_end(grant=grant, acting_user=request.user, ip=request.client_ip)
    messages.success(request, f"Break-glass access #{grant.pk} is ended.")
    return redirect(f"{reverse('support_console')}?account={grant.account_id}")


def _reviewable_grants(user):
    scope = audit_scope(user)
    grants = BreakGlassGrant.objects.select_related("agent", "account", "reviewed_by")
    if scope is AuditScope.ALL:
        return grants
    if scope is AuditScope.PRACTICE:
        return grants.filter(account__practice_id=user.practice_id)
    raise PermissionDenied


@login_required
@never_cache
@require_http_methods(["GET"])
def break_glass_list(request: HttpRequest) -> HttpResponse:
    """Every break-glass access the viewer oversees, newest first, with its review."""
    grants = list(_reviewable_grants(request.user)[:200])
    reviewable = {grant.pk for grant in grants if can_review_break_glass(request.user, grant)}
    return render(
        request,
        "break_glass/list.html",
        {"grants": grants, "reviewable": reviewable},
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def break_glass_review(request: HttpRequest, grant_id: int) -> HttpResponse:
    """Review a grant the viewer oversees, once it has ended: an outcome and a note."""
    grant = _reviewable_grants(request.user).filter(pk=grant_id).first()
    if grant is None:
        raise Http404
    if not can_review_break_glass(request.user, grant):
        raise PermissionDenied
    form = BreakGlassReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and grant.is_open:
        # Refused here, at once and without asking first, and never passed on: a request
        # that skipped the prompt because the access was open when it was looked at must
        # not reach the service after it has ended.
        form.add_error(None, services.break_glass_review_refused(grant))
    elif request.method == "POST" and form.is_valid():
        # An oversight decision: a session taken over must not mark misuse justified.
        label = f"record the review of break-glass access #{grant.pk}"
        asked = reauth.confirm_unless_recent(request, label=label)
        if asked is not None:
            return asked
        try:
            services.break_glass_review(
                grant=grant,
                acting_user=request.user,
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
                ip=request.client_ip,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Break-glass access #{grant.pk} was reviewed.")
            return redirect("break_glass_list")
    context = {"grant": grant, "form": form, "still_open": grant.is_open}
    status = 400 if form.errors else 200
    return render(request, "break_glass/review.html", context, status=status)
