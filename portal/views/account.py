"""The user's own account: API tokens, created and revoked."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import forms, selectors, services
from portal.errors import StudioError
from portal.views.common import form_error


@login_required
@never_cache
def tokens(request: HttpRequest) -> HttpResponse:
    workspaces = list(selectors.visible_workspaces(request.user))
    form = forms.TokenForm(request.POST or None, workspaces=workspaces)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.token_create(user=request.user, **form.cleaned_data)
        except StudioError as exc:
            form_error(form, exc)
        else:
            form = forms.TokenForm(workspaces=workspaces)
    return render(
        request,
        "portal/tokens.html",
        {"form": form, "tokens": selectors.tokens_for_user(request.user), "new_token": new_token},
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id) -> HttpResponse:
    token = get_object_or_404(selectors.tokens_for_user(request.user), pk=token_id)
    services.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")
