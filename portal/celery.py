"""The Celery application shared by web processes (producers) and workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("mlstudio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
