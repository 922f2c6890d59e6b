"""Pages: compare."""

urlpatterns: list = []
