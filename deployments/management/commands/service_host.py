"""Run the service host: supervise the local runtime's web services (see
deployments.servicehost). `make run` starts it beside the studio; stop it with SIGTERM or
Ctrl-C (its services stop with it and start again with the next one)."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web services of the local runtime (scoring servers behind stable ports)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--studio-url",
            default=settings.SITE_URL or None,
            help="the studio's URL, where scoring servers send telemetry (default SITE_URL)",
        )

    def handle(self, *args, **opts) -> None:
        from deployments.servicehost.host import HostBusy, ServiceHost

        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s service_host %(levelname)s: %(message)s",
            stream=sys.stdout,
            force=True,
        )
        host = ServiceHost(studio_url=opts["studio_url"])
        try:
            host.run()
        except HostBusy as exc:
            self.stderr.write(f"Not started: {exc}.")
            sys.exit(1)
