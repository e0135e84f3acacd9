"""Django app config of `campaigns`."""
from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from adplatform.logs import connect_django
        from campaigns.log_privacy import install_request_log_filter

        install_request_log_filter()
        connect_django()
