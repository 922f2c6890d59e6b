from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What portal calls without naming us: the experiment purge job, our part of a
        # workspace purge, the deletion page's counts, the workspace page's panel.
        from tracking import registrations

        registrations.register()
