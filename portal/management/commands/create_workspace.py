"""Create whatever is missing of SUBSCRIPTION › RESOURCE_GROUP › WORKSPACE and grant an owner."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from portal import selectors, services
from portal.errors import StudioError
from portal.models import ResourceGroup, Role, Subscription, Workspace


class Command(BaseCommand):
    help = (
        "Create a subscription, resource group and workspace (each only if missing), make "
        "--owner its owner, and print the workspace's MLflow tracking URI on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subscription", help="subscription name")
        parser.add_argument("resource_group", help="resource group name")
        parser.add_argument("workspace", help="workspace name")
        parser.add_argument("--owner", required=True, help="user name of the owner")
        parser.add_argument("--location", default="local")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--base-url", default=None, help="public URL of the studio (default SITE_URL)"
        )

    def handle(self, *args, **opts) -> None:
        owner = get_user_model().objects.filter(username=opts["owner"]).first()
        if owner is None:
            raise CommandError(f"No user named {opts['owner']!r}.")
        try:
            with transaction.atomic():
                ws = self._ensure(owner, opts)
        except StudioError as exc:
            raise CommandError(exc.message) from exc
        base = (opts["base_url"] or selectors.base_url()).rstrip("/")
        self.stdout.write(selectors.tracking_uri(ws, base))

    def _ensure(self, owner, opts) -> Workspace:
        sub = Subscription.objects.filter(name__iexact=opts["subscription"]).first()
        if sub is None:
            sub = services.subscription_create(actor=owner, name=opts["subscription"])
            self.stderr.write(f"created subscription {sub.name} ({sub.id})")
        rg = ResourceGroup.objects.filter(
            subscription=sub, name__iexact=opts["resource_group"]
        ).first()
        if rg is None:
            rg = services.resource_group_create(
                actor=owner,
                subscription=sub,
                name=opts["resource_group"],
                location=opts["location"],
            )
            self.stderr.write(f"created resource group {rg.name}")
        ws = (
            Workspace.objects.select_related("resource_group__subscription")
            .filter(resource_group=rg, name__iexact=opts["workspace"])
            .first()
        )
        if ws is None:
            ws = services.workspace_create(
                actor=owner,
                resource_group=rg,
                name=opts["workspace"],
                description=opts["description"],
                location=opts["location"],
            )
            self.stderr.write(f"created workspace {ws.name}")
        services.membership_grant(actor=owner, scope=ws, user=owner, role=Role.OWNER)
        return ws
