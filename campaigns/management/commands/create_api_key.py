"""`manage.py create_api_key --org <slug> --scopes serve,manage`: prints a new key once."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaigns import services


class Command(BaseCommand):
    help = "Create an API key for an organization (created if needed) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--scopes", default="serve", help="comma-separated: serve, manage")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, org: str, scopes: str, name: str, **options):
        try:
            organization = services.organization_get_or_create(slug=org)
            key, raw = services.api_key_create(
                organization=organization, scopes=[s.strip() for s in scopes.split(",") if s.strip()], name=name
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        self.stdout.write(raw)
