"""The studio's URLs plus two views that crash outside DRF, for the 500 handler's test."""

from django.urls import path

from portal.urls import handler500
from portal.urls import urlpatterns as studio_urlpatterns


def crash(request):
    raise RuntimeError("secret detail /srv/app")


urlpatterns = [
    path("api/v1/crash", crash),
    path("crash", crash),
    *studio_urlpatterns,
]

__all__ = ["handler500", "urlpatterns"]
