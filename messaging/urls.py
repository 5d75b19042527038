from django.urls import path

from . import webhooks

app_name = "messaging"

urlpatterns = [
    path("<str:provider>/<uuid:sender_uuid>/status/", webhooks.callback, {"kind": "status"}, name="webhook_status"),
    path("<str:provider>/<uuid:sender_uuid>/inbound/", webhooks.callback, {"kind": "inbound"}, name="webhook_inbound"),
]
