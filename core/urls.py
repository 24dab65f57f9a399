from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core.api import api
from core.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),
]

if settings.SILK_ENABLED:
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))

# Static files (admin CSS, Swagger UI) are served by WhiteNoise's middleware.
