from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from campaigns.media import MEDIA_DIR, media_serve

urlpatterns = [
    path("webhooks/", include("messaging.urls")),
    path("admin/campaigns/", include("campaigns.urls")),
    path("admin/", admin.site.urls),
    # Campaign media, public: providers fetch these files without logging in.
    path(f"{settings.MEDIA_URL.lstrip('/')}{MEDIA_DIR}/<path:path>", media_serve, name="campaign_media"),
]
