"""Pages: runs."""

urlpatterns: list = []
