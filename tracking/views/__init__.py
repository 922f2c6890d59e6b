"""Pages of the tracking app: experiments, runs, compare charts, models.

Each module owns its pages and exports `urlpatterns`; `tracking.urls` mounts them
under a workspace's URL.
"""
