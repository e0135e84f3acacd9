"""`manage.py build_tiny_model`: make sure the tiny checkpoint exists under MODEL_CACHE_DIR."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build (or find) the project's tiny text-to-video checkpoint and print its folder."

    def handle(self, *args, **options):
        from generation.tiny_model import resolve_model_path

        self.stdout.write(str(resolve_model_path("tiny", Path(settings.MODEL_CACHE_DIR))))
