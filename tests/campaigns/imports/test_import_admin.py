"""The admin flow through the test client: upload -> preview and mapping -> job -> progress JSON -> report."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Contact, ContactList, ImportJob, Tag
from messaging.models import ConsentEvent, Suppression

pytestmark = pytest.mark.django_db

FILE = (
    "Phone;First name;Company\r\n"
    "(415) 555-0100;Ann;=HYPERLINK(\"http://x\")\r\n"
    "1.41555E+10;Bob;Beta\r\n"
    "415 555 0101;Zoë;Gamma\r\n"
).encode("cp1252")


def upload(client, data=FILE, name="leads.csv", kind="contacts"):
    return client.post(reverse("admin:campaigns_importjob_add"),
                       {"file": SimpleUploadedFile(name, data), "kind": kind})


def test_upload_map_import_and_report(staff_client, eager_celery):
    response = upload(staff_client)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:campaigns_importjob_mapping", args=[job.pk])
    assert job.status == "new" and job.delimiter == ";" and job.encoding == "cp1252"

    page = staff_client.get(response.url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "(415) 555-0100" in html and "1.41555E+10" in html  # the preview
    assert 'name="col_0"' in html and "custom field {{ company }}" in html

    with eager_celery(execute=True):
        response = staff_client.post(reverse("admin:campaigns_importjob_mapping", args=[job.pk]), {
            "col_0": "phone", "col_1": "first_name", "col_2": "custom:company",
            "region": "US", "policy": "update", "new_list_name": "Spring leads",
        })
    assert response.status_code == 302 and response.url == reverse("admin:campaigns_importjob_change", args=[job.pk])

    progress = staff_client.get(reverse("campaigns:import_progress", args=[job.pk])).json()
    assert progress["finished"] and progress["status"] == "completed" and progress["progress"] == 100.0
    assert (progress["created"], progress["invalid"], progress["has_report"]) == (2, 1, True)
    assert Contact.objects.filter(lists__name="Spring leads").count() == 2
    assert Contact.objects.get(phone="+14155550101").first_name == "Zoë"

    page = staff_client.get(response.url).content.decode()
    assert reverse("campaigns:import_report", args=[job.pk]) in page and 'id="import-progress"' in page

    report = staff_client.get(reverse("campaigns:import_report", args=[job.pk]))
    assert report["Content-Disposition"].startswith('attachment; filename="leads-problems.csv"')
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[1][:3] == ["3", rows[1][1], "1.41555E+10"] and "digits were lost" in rows[1][1]


def test_mapping_without_phone_is_refused_and_nothing_runs(staff_client, eager_celery):
    upload(staff_client)
    job = ImportJob.objects.get()
    with eager_celery(execute=True):
        response = staff_client.post(reverse("admin:campaigns_importjob_mapping", args=[job.pk]), {
            "col_0": "", "col_1": "first_name", "col_2": "", "region": "US", "policy": "update",
            "new_list_name": "X"})
    assert response.status_code == 200 and "No column holds phone numbers" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "new" and not Contact.objects.exists() and not ContactList.objects.exists()


def test_bad_upload_is_refused_with_a_clear_message(staff_client):
    response = upload(staff_client, data=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(32)) * 100, name="a.pdf")
    assert response.status_code == 200
    assert "does not look like a spreadsheet" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_upload_over_the_limit(staff_client, settings):
    settings.IMPORT_MAX_BYTES = 20
    response = upload(staff_client)
    assert "the limit is" in response.content.decode() and not ImportJob.objects.exists()


def test_suppression_upload(staff_client, eager_celery):
    upload(staff_client, data=b"number\r\n+14155550100\r\n", kind="suppression")
    job = ImportJob.objects.get()
    with eager_celery(execute=True):
        staff_client.post(reverse("admin:campaigns_importjob_mapping", args=[job.pk]),
                          {"col_0": "phone", "region": "US"})
    job.refresh_from_db()
    assert job.status == "completed" and job.created_count == 1
    assert Suppression.objects.get().opted_out
    assert ConsentEvent.objects.get().created_by.username == "admin"


def test_contact_list_and_tag_actions_filters_and_consent(staff_client, admin_user):
    a = Contact.objects.create(phone="+14155550100", custom_fields={"company": "Acme"})
    b = Contact.objects.create(phone="+14155550101", custom_fields={"company": "Beta"})
    vip = ContactList.objects.create(name="VIP")
    tag = Tag.objects.create(name="hot")
    url = reverse("admin:campaigns_contact_changelist")

    def act(action, ids, **extra):
        return staff_client.post(url, {"action": action, "_selected_action": [c.pk for c in ids], **extra})

    act("add_to_list", [a, b], contact_list=vip.pk)
    assert set(vip.contacts.all()) == {a, b}
    act("remove_from_list", [b], contact_list=vip.pk)
    assert list(vip.contacts.all()) == [a]
    act("add_tag", [b], tag=tag.pk)
    assert list(tag.contacts.all()) == [b]

    act("opt_out", [a])
    a.refresh_from_db()
    assert a.opted_out and Suppression.objects.get(phone="+14155550100").opted_out
    entry = ConsentEvent.objects.get()
    assert (entry.method, entry.created_by) == ("staff", admin_user)

    page = staff_client.get(url, {"custom_field": "company=Beta"}).content.decode()
    assert "+14155550101" in page and "+14155550100" not in page
    assert "has company" in staff_client.get(url).content.decode()
    assert "+14155550100" in staff_client.get(url, {"opted_out__exact": "1"}).content.decode()
    assert reverse("admin:campaigns_importjob_add") in staff_client.get(url).content.decode()

    export = act("export_csv", [a, b])
    body = b"".join(export.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads the file as UTF-8
    text = body.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("phone,first_name") and "'+14155550100" in text


def test_job_pages_and_delete(staff_client, media_root):
    upload(staff_client)
    job = ImportJob.objects.get()
    assert staff_client.get(reverse("admin:campaigns_importjob_changelist")).status_code == 200
    page = staff_client.get(reverse("admin:campaigns_importjob_change", args=[job.pk])).content.decode()
    assert reverse("admin:campaigns_importjob_mapping", args=[job.pk]) in page  # the next step is offered
    stored = media_root / job.file.name
    assert stored.exists()
    response = staff_client.post(reverse("admin:campaigns_importjob_delete", args=[job.pk]), {"post": "yes"})
    assert response.status_code == 302 and not ImportJob.objects.exists() and not stored.exists()


def test_list_export_download_starts_with_a_bom_and_keeps_accents(staff_client):
    renee = Contact.objects.create(phone="+14155550100", first_name="Renée")
    vip = ContactList.objects.create(name="VIP")
    vip.contacts.add(renee)
    response = staff_client.post(reverse("admin:campaigns_contactlist_changelist"),
                                 {"action": "export_csv", "_selected_action": [vip.pk]})
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeffphone,".encode()) and "Renée".encode() in body


def test_list_changelist_counts_members_in_one_query(staff_client, django_assert_max_num_queries):
    contacts = [Contact.objects.create(phone=f"+1415555{n:04d}") for n in range(5)]
    for size in range(12):
        contact_list = ContactList.objects.create(name=f"List {size:02d}", description=f"about {size}")
        contact_list.contacts.add(*contacts[:size % 6])
    url = reverse("admin:campaigns_contactlist_changelist")
    staff_client.get(url)  # warm the session and permission caches
    with django_assert_max_num_queries(8):
        page = staff_client.get(url).content.decode()
    assert '<td class="field-member_count">5</td>' in page and '<td class="field-member_count">0</td>' in page

    def names(**params):
        html = staff_client.get(url, params).content.decode()
        return sorted({n for n in (f"List {i:02d}" for i in range(12)) if f">{n}<" in html})

    assert names(size="empty") == ["List 00", "List 06"]
    assert names(q="about 11") == ["List 11"]
    assert names(o="2") == names()  # sortable by the count
    used = ContactList.objects.get(name="List 03")
    from campaigns.models import Campaign
    from messaging.models import Sender

    sender = Sender.objects.create(name="s", provider="plivo", address="+14155559999", credentials={})
    Campaign.objects.create(name="c", sender=sender).lists.add(used)
    assert names(in_campaign="yes") == ["List 03"]
    assert "List 03" not in names(in_campaign="no")


def test_tag_changelist_counts_contacts(staff_client):
    hot, cold = Tag.objects.create(name="hot"), Tag.objects.create(name="cold")
    for n in range(3):
        Contact.objects.create(phone=f"+1415555{n:04d}").tags.add(hot)
    page = staff_client.get(reverse("admin:campaigns_tag_changelist")).content.decode()
    assert '<td class="field-contact_count">3</td>' in page and '<td class="field-contact_count">0</td>' in page
    assert cold.name in page
