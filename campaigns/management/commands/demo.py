"""`manage.py demo`: the demo organization, a login, an API key, a brand — and prints them."""
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from campaigns import selectors, services
from campaigns.models import Membership


class Command(BaseCommand):
    help = "Seed the demo organization (idempotent) and print the login and an API key."

    def handle(self, *args, **options):
        org = services.organization_get_or_create(slug="demo", name="Demo Outdoor Co.")
        User = get_user_model()
        user, _ = User.objects.get_or_create(username="demo", defaults={"email": "demo@example.com"})
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = True
        user.is_superuser = True
        user.save()
        services.membership_set(user=user, organization=org, role=Membership.Role.ADMIN)
        _, raw_key = services.api_key_create(organization=org, scopes=["serve", "manage"], name="demo")

        brand = selectors.brand_list(organization=org).filter(name="Trailhead").first() or services.brand_create(
            organization=org, name="Trailhead", palette=["#E4572E", "#F3F1E7", "#29335C"],
            style_notes="sunlit outdoor scenes, warm film grain, confident and friendly",
        )
        self.stdout.write(self.style.SUCCESS("\nDemo ready."))
        self.stdout.write(f"  Dashboard: http://127.0.0.1:8000/   login: demo / {password}")
        self.stdout.write(f"  API key (serve, manage): {raw_key}")
        self.stdout.write(f"  Brand: {brand.name} (id {brand.pk})\n")
