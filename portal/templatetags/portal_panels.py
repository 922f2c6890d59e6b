"""Drawing what other apps registered (portal.registry) inside portal's pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def render_panel(context: template.Context, panel: dict[str, Any]) -> SafeString:
    """Render `panel["template"]` with the page's context plus `panel["context"]`."""
    values = {**context.flatten(), **panel["context"]}
    return render_to_string(panel["template"], values, request=context.get("request"))
