"""Create an API token for a user and print it on the last line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal import services
from portal.errors import StudioError
from portal.models import TokenScope, Workspace


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print the token (shown only once) on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line")
        parser.add_argument(
            "--workspace",
            help="limit it to one workspace: SUBSCRIPTION/RESOURCE_GROUP/WORKSPACE or its id",
        )
        parser.add_argument("--scope", choices=TokenScope.values, default=TokenScope.FULL)
        parser.add_argument("--expires-in", type=int, default=None, help="lifetime in seconds")

    def handle(self, *args, **opts) -> None:
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"No user named {opts['username']!r}.")
        workspace = self._workspace(opts["workspace"]) if opts["workspace"] else None
        try:
            token, raw = services.token_create(
                user=user,
                name=opts["name"],
                scope=opts["scope"],
                workspace=workspace,
                expires_in=opts["expires_in"],
            )
        except StudioError as exc:
            raise CommandError(exc.message) from exc
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"token {token.name!r} for {user.get_username()}, expires {expiry}")
        self.stdout.write(raw)

    def _workspace(self, spec: str) -> Workspace:
        parts = spec.split("/")
        qs = Workspace.objects.select_related("resource_group__subscription")
        if len(parts) == 3:
            ws = qs.filter(
                resource_group__subscription__name__iexact=parts[0],
                resource_group__name__iexact=parts[1],
                name__iexact=parts[2],
            ).first()
        else:
            try:
                ws = qs.filter(pk=spec).first()
            except Exception:  # not a UUID
                ws = None
        if ws is None:
            raise CommandError(
                f"No workspace {spec!r} (give SUBSCRIPTION/RESOURCE_GROUP/WORKSPACE or an id)."
            )
        return ws
