from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What portal calls without naming us: the remote-run job kind, the run_cancel
        # hook, our part of a workspace purge (stop remote runs before runs go); the run
        # page's Job tab and the workspace page's card.
        from deployments import registrations
        from deployments.services import drift, images, jobs, webservices

        jobs.register()
        drift.register()  # the drift_backfill job kind
        images.register()  # the image_build job kind, the images purge step
        webservices.register()  # the deployment job kind, the services purge step, service_host
        registrations.register()
