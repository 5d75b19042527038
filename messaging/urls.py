from django.urls import path

from . import webhooks

app_name = "messaging"

urlpatterns = [
    path("<str:provider>/<uuid:sender_uuid>/status/", webhooks.status_callback, name="webhook_status"),
    path("<str:provider>/<uuid:sender_uuid>/inbound/", webhooks.inbound_callback, name="webhook_inbound"),
]
