"""The audit log: each state change a person makes is recorded with who, when and on what; it shows in the
object's History and on the audit page, names credential keys and never their values, and cannot be edited or
deleted in the admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from campaigns.roles import ADMINISTRATOR, CAMPAIGN_MANAGER, VIEWER

pytestmark = pytest.mark.django_db


def entries_for(obj) -> list[str]:
    return list(LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name)
                .order_by("id").values_list("change_message", flat=True))


def test_campaign_controls_are_recorded_with_who_and_shown_in_history(client, roles, make_sender, make_audience,
                                                                      make_campaign, engine):
    from campaigns import preflight
    from campaigns.models import Campaign

    manager = roles.user(CAMPAIGN_MANAGER)
    client.force_login(manager)
    campaign = make_campaign(make_sender("plivo"), [make_audience(4)])
    fingerprint = preflight.campaign_fingerprint(campaign=campaign, recipients=preflight.audience_count(campaign=campaign))
    response = client.post(reverse("campaigns:campaign_confirm", args=[campaign.pk, "launch"]),
                           {"fingerprint": fingerprint})
    assert response.status_code == 302
    for action in ("pause", "resume", "cancel"):
        client.post(reverse("campaigns:campaign_action", args=[campaign.pk, action]))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELED

    recorded = entries_for(campaign)
    assert [m.split(":")[0] for m in recorded] == ["Launched", "Paused", "Resumed", "Canceled"]
    assert recorded[0] == "Launched: 4 recipients, 0 opted out and skipped"
    assert set(LogEntry.objects.filter(object_id=str(campaign.pk)).values_list("user_id", flat=True)) == {manager.pk}

    history = client.get(reverse("admin:campaigns_campaign_history", args=[campaign.pk])).content.decode()
    for text in ("Launched", "Paused", "Resumed", "Canceled", manager.username):
        assert text in history


def test_a_refused_control_records_nothing(client, roles, make_sender, make_audience, make_campaign, engine):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)])
    client.force_login(roles.user(VIEWER))
    assert client.post(reverse("campaigns:campaign_action", args=[campaign.pk, "cancel"])).status_code == 403
    assert entries_for(campaign) == []


def test_credential_changes_name_the_keys_and_never_the_values(client, roles, make_sender):
    sender = make_sender("plivo")
    admin_user = roles.user(ADMINISTRATOR)
    client.force_login(admin_user)
    url = reverse("admin:messaging_sender_change", args=[sender.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"credential_plivo_auth_token": "s3cret-token-value-42", "options": "{}", "_save": "Save"})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    recorded = entries_for(sender)
    assert "Changed credentials: credential auth_token" in recorded
    assert not LogEntry.objects.filter(change_message__contains="s3cret").exists()
    page = client.get(reverse("admin:messaging_auditentry_changelist")).content.decode()
    assert "Changed credentials: credential auth_token" in page
    assert "s3cret" not in page


def test_exports_and_consent_undo_are_recorded(client, roles, make_audience):
    from campaigns.models import Contact
    from messaging import services
    from messaging.models import ConsentEvent

    audience = make_audience(3)
    manager = roles.user(CAMPAIGN_MANAGER)
    client.force_login(manager)
    ids = list(Contact.objects.filter(lists=audience).values_list("pk", flat=True))
    response = client.post(reverse("admin:campaigns_contact_changelist"), {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    b"".join(response.streaming_content)
    assert LogEntry.objects.filter(user=manager, change_message="Exported contacts to CSV",
                                   object_repr="3 contacts").exists()

    entry = services.consent_record(phone="+12125550100", action=ConsentEvent.Action.OPT_OUT,
                                    method=ConsentEvent.Method.KEYWORD, detail="STOP")
    administrator = roles.user(ADMINISTRATOR)
    client.force_login(administrator)
    client.post(reverse("admin:messaging_consentevent_changelist"), {"action": "undo", "_selected_action": [entry.pk]})
    assert [m.split(":")[0] for m in entries_for(entry)] == ["Undid consent entry"]


def test_the_audit_log_cannot_be_edited_or_deleted(client, roles, make_sender, make_audience, make_campaign, engine):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)])
    administrator = roles.user(ADMINISTRATOR)
    client.force_login(administrator)
    client.post(reverse("campaigns:campaign_action", args=[campaign.pk, "cancel"]))
    entry = LogEntry.objects.get(object_id=str(campaign.pk))
    change = reverse("admin:messaging_auditentry_change", args=[entry.pk])
    assert client.get(change).status_code == 200  # readable
    client.post(change, {"change_message": "nothing happened"})
    assert client.post(reverse("admin:messaging_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    client.post(reverse("admin:messaging_auditentry_changelist"), {"action": "delete_selected",
                                                                  "_selected_action": [entry.pk], "post": "yes"})
    entry.refresh_from_db()
    assert entry.change_message.startswith("Canceled")
    assert client.get(reverse("admin:messaging_auditentry_add")).status_code == 403


def test_a_launched_campaign_cannot_be_deleted(client, roles, make_sender, make_audience, make_campaign, engine):
    from campaigns import services
    from campaigns.models import Campaign

    sent = make_campaign(make_sender("plivo"), [make_audience(2)], name="Sent one")
    services.campaign_launch(campaign=sent, check_media=False)
    draft = make_campaign(make_sender("plivo"), [make_audience(2, prefix="+1212666")], name="Draft one")
    client.force_login(roles.user(ADMINISTRATOR))
    assert client.post(reverse("admin:campaigns_campaign_delete", args=[sent.pk]), {"post": "yes"}).status_code == 403
    changelist = reverse("admin:campaigns_campaign_changelist")
    client.post(changelist, {"action": "delete_selected", "_selected_action": [sent.pk, draft.pk], "post": "yes"})
    assert Campaign.objects.count() == 2  # a selection holding a launched campaign deletes nothing
    client.post(changelist, {"action": "delete_selected", "_selected_action": [draft.pk], "post": "yes"})
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Sent one"]
