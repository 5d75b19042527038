from django.urls import path

from . import views
from .imports import views as import_views

app_name = "campaigns"

urlpatterns = [
    path("campaign/<int:pk>/action/<str:action>/", views.campaign_action, name="campaign_action"),
    path("campaign/<int:pk>/confirm/<str:action>/", views.campaign_confirm, name="campaign_confirm"),
    path("compose/preview/", views.compose_preview, name="compose_preview"),
    path("campaign/<int:pk>/stats/", views.campaign_stats, name="campaign_stats"),
    path("campaign/<int:pk>/export/<str:fmt>/", views.campaign_export, name="campaign_export"),
    path("import/<int:pk>/progress/", import_views.import_progress_view, name="import_progress"),
    path("import/<int:pk>/problems/", import_views.import_report_download, name="import_report"),
]
