"""Create the first administrator if there is none (used by `make run`)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists: MLSTUDIO_ADMIN_USER (default admin) and "
        "MLSTUDIO_ADMIN_PASSWORD (default: generated and printed)."
    )

    def handle(self, *args, **opts) -> None:
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            names = ", ".join(
                users.filter(is_superuser=True).values_list("username", flat=True)[:5]
            )
            self.stdout.write(f"Administrator account exists: {names}")
            return
        username = os.environ.get("MLSTUDIO_ADMIN_USER", "admin")
        password = os.environ.get("MLSTUDIO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS("Created the first administrator:"))
        self.stdout.write(f"  user name: {username}")
        if os.environ.get("MLSTUDIO_ADMIN_PASSWORD"):
            self.stdout.write("  password:  (from MLSTUDIO_ADMIN_PASSWORD)")
        else:
            self.stdout.write(f"  password:  {password}")
