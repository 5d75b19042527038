"""The consent ledger: append-only entries, undo as its own entry, current state mirrored on contacts."""

from __future__ import annotations

import pytest

from campaigns.models import Contact
from messaging.models import ConsentEvent, Suppression
from messaging.selectors import is_opted_out
from messaging.services import consent_import, consent_record, consent_undo

pytestmark = pytest.mark.django_db
A = ConsentEvent.Action
M = ConsentEvent.Method


def test_opt_out_is_recorded_and_mirrored_on_the_contact(admin_user):
    contact = Contact.objects.create(phone="+14155550100")
    entry = consent_record(phone="+14155550100", action=A.OPT_OUT, method=M.STAFF, detail="asked by phone",
                           user=admin_user)
    contact.refresh_from_db()
    assert contact.opted_out and is_opted_out("+14155550100")
    assert (entry.method, entry.created_by, entry.detail) == ("staff", admin_user, "asked by phone")
    assert not is_opted_out("+14155550101")


def test_undo_adds_its_own_entry_and_restores_the_state(admin_user):
    contact = Contact.objects.create(phone="+14155550100")
    first = consent_record(phone="+14155550100", action=A.OPT_OUT, method=M.KEYWORD, detail="replied STOP")
    undo = consent_undo(event=first, user=admin_user)

    contact.refresh_from_db()
    assert not contact.opted_out and not is_opted_out("+14155550100")
    assert Suppression.objects.get(phone="+14155550100").opted_out is False
    assert (undo.action, undo.method, undo.undoes, undo.created_by) == (A.OPT_IN, M.STAFF, first, admin_user)
    first.refresh_from_db()
    assert (first.action, first.detail) == (A.OPT_OUT, "replied STOP")  # history untouched
    assert ConsentEvent.objects.count() == 2

    consent_undo(event=undo, user=admin_user)  # undoing the undo opts out again
    contact.refresh_from_db()
    assert contact.opted_out and ConsentEvent.objects.count() == 3


def test_bulk_import_records_only_changes():
    Contact.objects.create(phone="+14155550101")
    consent_record(phone="+14155550100", action=A.OPT_OUT, method=M.PROVIDER)
    result = consent_import(phones=["+14155550100", "+14155550101", "+14155550102", "+14155550101"],
                            detail="old tool")
    assert result == {"changed": 2, "unchanged": 1}
    assert ConsentEvent.objects.filter(method=M.IMPORT).count() == 2
    assert all(is_opted_out(p) for p in ("+14155550100", "+14155550101", "+14155550102"))
    assert Contact.objects.get(phone="+14155550101").opted_out

    back_in = consent_import(phones=["+14155550101"], action=A.OPT_IN, method=M.STAFF)
    assert back_in == {"changed": 1, "unchanged": 0}
    assert not Contact.objects.get(phone="+14155550101").opted_out and not is_opted_out("+14155550101")


def test_an_entry_is_undone_once_only(admin_user):
    first = consent_record(phone="+14155550100", action=A.OPT_OUT, method=M.KEYWORD)
    consent_undo(event=first, user=admin_user)
    with pytest.raises(ValueError, match="already undone"):
        consent_undo(event=first, user=admin_user)
    assert ConsentEvent.objects.count() == 2 and not is_opted_out("+14155550100")


def test_numbers_are_read_however_they_are_written():
    consent_record(phone="(415) 555-0100", action=A.OPT_OUT, method=M.STAFF)
    assert ConsentEvent.objects.get().phone == "+14155550100"
    assert is_opted_out("+1 415 555 0100") and is_opted_out("4155550100") and is_opted_out("+14155550100")
    assert not is_opted_out("not a number")
    with pytest.raises(ValueError, match="not a"):
        consent_record(phone="12", action=A.OPT_OUT, method=M.STAFF)


def test_the_ledger_cannot_be_edited_or_deleted_in_the_admin(admin_client):
    entry = consent_record(phone="+14155550100", action=A.OPT_OUT, method=M.KEYWORD, detail="replied STOP")
    assert admin_client.post(f"/admin/messaging/consentevent/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    response = admin_client.post("/admin/messaging/consentevent/", {
        "action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert ConsentEvent.objects.filter(pk=entry.pk).exists()
    suppression = Suppression.objects.get(phone="+14155550100")
    assert admin_client.post(f"/admin/messaging/suppression/{suppression.pk}/delete/", {"post": "yes"}).status_code == 403
    assert response.status_code in (200, 302)


def test_staff_add_an_entry_in_the_admin_with_the_number_as_they_type_it(admin_client, admin_user):
    response = admin_client.post("/admin/messaging/consentevent/add/",
                                 {"phone": "415 555 0100", "action": "opt_out", "detail": "asked at the counter"})
    assert response.status_code == 302
    entry = ConsentEvent.objects.get()
    assert (entry.phone, entry.method, entry.created_by) == ("+14155550100", "staff", admin_user)
    assert is_opted_out("+14155550100")
    response = admin_client.post("/admin/messaging/consentevent/add/", {"phone": "hello", "action": "opt_out"})
    assert response.status_code == 200 and "is not a phone number" in response.content.decode()
