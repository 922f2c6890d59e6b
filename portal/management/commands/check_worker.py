"""Send the health task to the workers and wait for the answer."""

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.tasks import ping


class Command(BaseCommand):
    help = "Check that a Celery worker takes tasks from the broker and reaches the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **opts) -> None:
        result = ping.delay()
        try:
            answer = result.get(timeout=opts["timeout"])
        except CeleryTimeout as exc:
            raise CommandError(f"No worker answered within {opts['timeout']:g} s.") from exc
        self.stdout.write(f"worker {answer['worker']} answered (database: {answer['database']})")
