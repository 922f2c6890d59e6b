from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Tenancy and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.services.deletion import register_scope_kinds

        register_scope_kinds()
