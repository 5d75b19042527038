from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("webhooks/", include("messaging.urls")),
    path("admin/campaigns/", include("campaigns.urls")),
    path("admin/", admin.site.urls),
]
