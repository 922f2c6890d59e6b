"""Drift alerts: a drifted window's email (Django's send_mail to `alert_emails`) and
webhook call (a JSON POST to `alert_webhook`, WEBHOOK_TIMEOUT seconds), sent once per
window. Failures are written on the result (`alert_error`), never raised: an unreachable
mail server or webhook must not fail the window's computation."""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from deployments.models import DriftMonitor, DriftResult

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 5


def _alert_payload(monitor: DriftMonitor, result: DriftResult) -> dict[str, Any]:
    top = sorted(
        ((name, f) for name, f in result.features.items() if f.get("score") is not None),
        key=lambda item: -item[1]["contribution"],
    )
    return {
        "event": "data_drift",
        "workspace": monitor.workspace.name,
        "service": monitor.service.name,
        "monitor": monitor.name,
        "window_start": result.window_start.isoformat(),
        "window_end": result.window_end.isoformat(),
        "rows": result.rows,
        "magnitude": result.magnitude,
        "threshold": monitor.threshold,
        "drifted": result.drifted,
        "features": {
            name: {"score": f["score"], "contribution": f["contribution"]} for name, f in top
        },
    }


def drift_alert(*, monitor: DriftMonitor, result: DriftResult) -> bool:
    """Send the window's alert unless it was sent: claims the window with one
    conditional UPDATE so two workers never both send. Returns whether it sent."""
    claimed = DriftResult.objects.filter(pk=result.pk, alerted_at__isnull=True).update(
        alerted_at=timezone.now()
    )
    if not claimed:
        return False
    payload = _alert_payload(monitor, result)
    errors = []
    if monitor.alert_emails:
        try:
            send_mail(
                subject=f"[ML Studio] Data drift on {monitor.service.name}/{monitor.name}: "
                f"{result.magnitude:.2f} >= {monitor.threshold:.2f}",
                message=_alert_text(payload),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=list(monitor.alert_emails),
            )
        except Exception as exc:  # an unreachable mail server must not fail the window
            log.warning("Drift alert email of monitor %s failed: %s", monitor.pk, exc)
            errors.append(f"email: {type(exc).__name__}: {str(exc)[:150]}")
    if monitor.alert_webhook:
        try:
            response = requests.post(monitor.alert_webhook, json=payload, timeout=WEBHOOK_TIMEOUT)
            if response.status_code >= 400:
                errors.append(f"webhook: HTTP {response.status_code}")
        except requests.RequestException as exc:
            log.warning("Drift webhook of monitor %s failed: %s", monitor.pk, exc)
            errors.append(f"webhook: {type(exc).__name__}")
    if errors:
        text = "; ".join(errors)[:500]
        DriftResult.objects.filter(pk=result.pk).update(alert_error=text)
        result.alert_error = text
    result.refresh_from_db(fields=["alerted_at", "alert_error"])
    return True


def _alert_text(payload: dict[str, Any]) -> str:
    lines = [
        f"Data drift was detected on the web service '{payload['service']}' "
        f"(workspace {payload['workspace']}), monitor '{payload['monitor']}'.",
        "",
        f"Window: {payload['window_start']} to {payload['window_end']} ({payload['rows']} rows)",
        f"Drift magnitude: {payload['magnitude']:.3f} (threshold {payload['threshold']:.3f})",
        "",
        "Features by contribution:",
    ]
    for name, figures in list(payload["features"].items())[:20]:
        share = figures["contribution"] * 100
        lines.append(f"  {name}: score {figures['score']:.3f}, {share:.0f}% of the drift")
    return "\n".join(lines) + "\n"
