"""The audience pages: a list's counts (changelist and its own page), its members table and imports, and the
contact form's custom fields and timezone."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from campaigns import selectors
from campaigns.models import Contact, ContactList, ImportJob

pytestmark = pytest.mark.django_db


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{len(codenames)}-{'-'.join(codenames)}"[:150], password="pw",
                                    is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="campaigns", codename=codename))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def audience(db):
    """Two lists sharing a contact: VIP (4 members: 1 opted out, 2 landlines, the shared one among them),
    Leads (2 members: the shared landline that opted out, and one more), Empty (none)."""
    ann = Contact.objects.create(phone="+14155550101", first_name="Ann", last_name="Archer", email="ann@example.com")
    bob = Contact.objects.create(phone="+14155550102", first_name="Bob", opted_out=True, is_fixed_line=True)
    cid = Contact.objects.create(phone="+14155550103", first_name="Cid", is_fixed_line=True)
    dee = Contact.objects.create(phone="+442079460000", first_name="Dee", email="dee@example.org")
    vip, leads = ContactList.objects.create(name="VIP"), ContactList.objects.create(name="Leads")
    empty = ContactList.objects.create(name="Empty")
    vip.contacts.add(ann, bob, cid, dee)
    leads.contacts.add(bob, ann)
    return {"vip": vip, "leads": leads, "empty": empty, "ann": ann, "bob": bob, "cid": cid, "dee": dee}


def cell(html: str, row_name: str, column: str) -> str:
    row = re.search(rf"<tr>(?:(?!</tr>).)*>{row_name}</a>(?:(?!</tr>).)*</tr>", html, re.S)
    assert row, f"no row for {row_name}"
    found = re.search(rf'<td class="field-{column}">([^<]*)</td>', row.group(0))
    return found.group(1)


# Counts


def test_list_counts_counts_each_list_in_one_query(audience, django_assert_num_queries):
    ids = [audience[name].pk for name in ("vip", "leads", "empty")] + [999_999]
    with django_assert_num_queries(1):
        counts = selectors.list_counts(ids)
    vip, leads, empty = (counts[audience[name].pk] for name in ("vip", "leads", "empty"))
    assert (vip.members, vip.opted_out, vip.landline, vip.sendable) == (4, 1, 2, 3)
    assert (leads.members, leads.opted_out, leads.landline, leads.sendable) == (2, 1, 1, 1)
    assert (empty.members, empty.opted_out, empty.landline, empty.sendable) == (0, 0, 0, 0)
    assert counts[999_999].members == 0
    assert selectors.list_counts([]) == {}


def test_the_list_changelist_shows_and_sorts_the_counts_without_a_query_per_row(
        admin_client, audience, django_assert_max_num_queries):
    for n in range(20):  # more rows must not mean more queries
        ContactList.objects.create(name=f"Extra {n:02d}").contacts.add(audience["ann"])
    url = reverse("admin:campaigns_contactlist_changelist")
    admin_client.get(url)
    with django_assert_max_num_queries(8):
        html = admin_client.get(url).content.decode()
    assert (cell(html, "VIP", "member_count"), cell(html, "VIP", "opted_out_count"),
            cell(html, "VIP", "landline_count")) == ("4", "1", "2")
    assert (cell(html, "Leads", "member_count"), cell(html, "Leads", "opted_out_count"),
            cell(html, "Leads", "landline_count")) == ("2", "1", "1")
    assert cell(html, "Empty", "member_count") == "0"
    for column in ("member_count", "opted_out_count", "landline_count"):
        assert f'<th scope="col" class="sortable column-{column}">' in html, column

    # sorted by landlines, most first (the columns are 1-based: name, members, opted out, landline)
    html = admin_client.get(url, {"o": "-4"}).content.decode()
    names = re.findall(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', html)
    assert names[0] == "VIP" and names[1] == "Leads"


# A list's page


def test_a_lists_page_shows_its_counts_members_and_imports(admin_client, audience):
    vip = audience["vip"]
    job = ImportJob.objects.create(original_name="spring.csv", contact_list=vip, status=ImportJob.Status.COMPLETED,
                                   rows=4, created_count=3, updated_count=1)
    other = ImportJob.objects.create(original_name="other.csv", contact_list=audience["leads"])
    html = admin_client.get(reverse("admin:campaigns_contactlist_change", args=[vip.pk])).content.decode()

    counts = dict(re.findall(r'<td data-count="(\w+)">(\d+)</td>', html))
    assert counts == {"members": "4", "sendable": "3", "opted_out": "1", "landline": "2"}

    members = html[html.index('id="list-members"'):]
    for contact in ("ann", "bob", "cid", "dee"):
        assert reverse("admin:campaigns_contact_change", args=[audience[contact].pk]) in members
    bob_row = re.search(rf'<tr data-contact="{audience["bob"].pk}">.*?</tr>', members, re.S).group(0)
    assert bob_row.count("icon-yes.svg") == 2  # opted out, landline
    assert "Ann Archer" in members and "ann@example.com" in members

    imports = html[html.index('id="list-imports"'):html.index('id="list-members-module"')]
    assert reverse("admin:campaigns_importjob_change", args=[job.pk]) in imports and "Completed" in imports
    assert reverse("admin:campaigns_importjob_change", args=[other.pk]) not in imports
    all_url = f'{reverse("admin:campaigns_importjob_changelist")}?contact_list__id__exact={vip.pk}'
    add_url = f'{reverse("admin:campaigns_importjob_add")}?contact_list={vip.pk}'
    assert all_url in html and add_url in html

    # the imports link shows this list's imports only
    listed = admin_client.get(all_url).content.decode()
    assert "spring.csv" in listed and "other.csv" not in listed


def test_the_import_link_offers_the_list_on_the_mapping_step(admin_client, audience, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    vip = audience["vip"]
    upload_url = f'{reverse("admin:campaigns_importjob_add")}?contact_list={vip.pk}'
    assert "Import contacts into VIP" in admin_client.get(upload_url).content.decode()
    response = admin_client.post(upload_url, {"file": SimpleUploadedFile("x.csv", b"phone\n+14155550199\n"),
                                              "kind": "contacts"})
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == f'{reverse("admin:campaigns_importjob_mapping", args=[job.pk])}?contact_list={vip.pk}'
    html = admin_client.get(response.url).content.decode()
    assert re.search(rf'<option value="{vip.pk}" selected>VIP</option>', html)


def test_the_members_table_searches_by_number_name_and_email(admin_client, audience):
    url = reverse("admin:campaigns_contactlist_change", args=[audience["vip"].pk])

    def found(q):
        html = admin_client.get(url, {"q": q}).content.decode()
        table = html[html.index('id="list-members"'):]
        return sorted(n for n in ("ann", "bob", "cid", "dee")
                      if f'data-contact="{audience[n].pk}"' in table)

    assert found("(415) 555-0102") == ["bob"]
    assert found("2079") == ["dee"]
    assert found("archer") == ["ann"]
    assert found("example") == ["ann", "dee"]
    assert found("ann example") == ["ann"]
    assert found("nobody") == []
    html = admin_client.get(url, {"q": "example"}).content.decode()
    assert "2 results" in html and "4 total" in html
    assert 'No member matches “nobody”' in admin_client.get(url, {"q": "nobody"}).content.decode()


def test_the_members_table_pages_by_fifty_counting_the_list_once(
        admin_client, make_audience, django_assert_max_num_queries):
    big = make_audience(120, name="Big")
    url = reverse("admin:campaigns_contactlist_change", args=[big.pk])
    admin_client.get(url)
    with django_assert_max_num_queries(12) as captured:
        html = admin_client.get(url).content.decode()
    counting = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counting) == 1, counting  # the counts selector; the paginator reuses its members count
    rows = re.findall(r'<tr data-contact="(\d+)">', html)
    assert len(rows) == 50
    paginator = html[html.index('id="list-members-paginator"'):]
    assert '<span class="this-page">1</span>' in paginator and "?p=2" in paginator and "?p=3" in paginator
    assert "120 members" in paginator

    last = admin_client.get(url, {"p": 3}).content.decode()
    assert len(re.findall(r'<tr data-contact="(\d+)">', last)) == 20
    assert not set(re.findall(r'<tr data-contact="(\d+)">', last)) & set(rows)

    searched = admin_client.get(url, {"q": "Person", "p": 2}).content.decode()
    assert '<span class="this-page">2</span>' in searched and "120 members found" in searched
    assert "q=Person&amp;p=1" in searched  # the search is kept when paging
    assert len(re.findall(r'<tr data-contact="(\d+)">', searched)) == 50


def test_a_view_only_staff_member_sees_the_list_page_without_import_or_edit_links(client, audience):
    vip = audience["vip"]
    client.force_login(staff("view_contactlist"))
    html = client.get(reverse("admin:campaigns_contactlist_change", args=[vip.pk])).content.decode()
    assert 'data-count="members">4<' in html
    assert html.count('<tr data-contact="') == 4
    assert reverse("admin:campaigns_contact_change", args=[audience["ann"].pk]) not in html  # no contact access
    assert "contact_list=" not in html and 'id="list-imports"' not in html

    client.force_login(staff("view_contactlist", "view_contact", "view_importjob"))
    html = client.get(reverse("admin:campaigns_contactlist_change", args=[vip.pk])).content.decode()
    assert reverse("admin:campaigns_contact_change", args=[audience["ann"].pk]) in html
    assert f"contact_list__id__exact={vip.pk}" in html and f"?contact_list={vip.pk}" not in html  # cannot import
    assert client.get(reverse("admin:campaigns_contactlist_changelist")).status_code == 200


# The contact form


def contact_form(contact: Contact, **changes) -> dict:
    data = {
        "phone": str(contact.phone), "first_name": contact.first_name, "last_name": contact.last_name,
        "email": contact.email, "timezone": contact.timezone, "tags": [],
        "new_custom_field_name": "", "new_custom_field_value": "",
        "listmembership_set-TOTAL_FORMS": "0", "listmembership_set-INITIAL_FORMS": "0",
        "listmembership_set-MIN_NUM_FORMS": "0", "listmembership_set-MAX_NUM_FORMS": "1000",
    }
    data.update({f"custom__{k}": v for k, v in (contact.custom_fields or {}).items()})
    data.update(changes)
    return data


@pytest.fixture
def renee(db):
    Contact.objects.create(phone="+14155550150", custom_fields={"plan": "gold"})  # a key in use elsewhere
    return Contact.objects.create(phone="+14155550151", first_name="Renée",
                                  custom_fields={"company": "Acme", "visits": 3})


def test_custom_fields_are_labelled_inputs_not_json(admin_client, renee):
    html = admin_client.get(reverse("admin:campaigns_contact_change", args=[renee.pk])).content.decode()
    assert 'name="custom_fields"' not in html
    assert re.search(r'<label for="id_custom__company">company:</label>', html)
    assert 'name="custom__company" value="Acme"' in html and 'name="custom__visits" value="3"' in html
    assert re.search(r'<input type="text" name="custom__plan"[^>]*id="id_custom__plan"', html)  # known elsewhere
    assert 'name="new_custom_field_name"' in html and 'name="new_custom_field_value"' in html


def test_custom_fields_are_edited_added_and_removed(admin_client, renee):
    url = reverse("admin:campaigns_contact_change", args=[renee.pk])
    response = admin_client.post(url, contact_form(renee, custom__company="Acme Ltd", custom__visits="3",
                                                   custom__plan="", new_custom_field_name="tier",
                                                   new_custom_field_value="B"))
    assert response.status_code == 302, response.content.decode()[:3000]
    renee.refresh_from_db()
    assert renee.custom_fields == {"company": "Acme Ltd", "visits": 3, "tier": "B"}  # 3 kept as a number

    response = admin_client.post(url, contact_form(renee, custom__company="", custom__plan="silver"))
    assert response.status_code == 302
    renee.refresh_from_db()
    assert renee.custom_fields == {"visits": 3, "tier": "B", "plan": "silver"}


@pytest.mark.parametrize("name,message", [
    ("2fast", "“2fast” cannot be used in a message template"),
    ("first name", "“first name” cannot be used in a message template"),
    ("_secret", "“_secret” cannot be used in a message template"),
    ("email", "“email” is a standard field of every contact"),
    ("company", "“company” is already a field above"),
])
def test_an_unusable_new_field_name_is_refused_naming_it(admin_client, renee, name, message):
    url = reverse("admin:campaigns_contact_change", args=[renee.pk])
    response = admin_client.post(url, contact_form(renee, new_custom_field_name=name, new_custom_field_value="x"))
    assert response.status_code == 200
    assert message in response.content.decode()
    renee.refresh_from_db()
    assert renee.custom_fields == {"company": "Acme", "visits": 3}


def test_a_new_field_needs_both_a_name_and_a_value(admin_client, renee):
    url = reverse("admin:campaigns_contact_change", args=[renee.pk])
    html = admin_client.post(url, contact_form(renee, new_custom_field_value="x")).content.decode()
    assert "Name the new field" in html
    html = admin_client.post(url, contact_form(renee, new_custom_field_name="tier")).content.decode()
    assert "Give a value for the new field “tier”" in html


def test_a_new_contact_can_be_added_with_a_custom_field(admin_client, renee):
    response = admin_client.post(reverse("admin:campaigns_contact_add"), {
        **contact_form(Contact(phone="+14155550160"), new_custom_field_name="Company_2",
                       new_custom_field_value="Beta"), "custom__plan": "bronze"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Contact.objects.get(phone="+14155550160").custom_fields == {"Company_2": "Beta", "plan": "bronze"}


def test_the_timezone_is_a_select_blank_meaning_from_the_number(admin_client, renee):
    url = reverse("admin:campaigns_contact_change", args=[renee.pk])
    html = admin_client.get(url).content.decode()
    select = re.search(r'<select name="timezone"[^>]*>(.*?)</select>', html, re.S).group(1)
    assert '<option value="" selected>(from the number)</option>' in select
    assert '<option value="Europe/Paris">Europe/Paris</option>' in select

    assert admin_client.post(url, contact_form(renee, timezone="Europe/Paris")).status_code == 302
    renee.refresh_from_db()
    assert renee.timezone == "Europe/Paris"
    assert 'value="Europe/Paris" selected' in admin_client.get(url).content.decode()

    response = admin_client.post(url, contact_form(renee, timezone="Mars/Olympus"))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_a_view_only_staff_member_sees_custom_fields_as_a_table(client, renee):
    client.force_login(staff("view_contact"))
    html = client.get(reverse("admin:campaigns_contact_change", args=[renee.pk])).content.decode()
    assert 'name="custom__company"' not in html and 'name="new_custom_field_name"' not in html
    assert '<th scope="row">company</th><td>Acme</td>' in html


# In a real browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_search_a_lists_members_and_give_a_contact_a_custom_field(
        browser, live_server, make_audience, django_user_model, tmp_path):
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    big = make_audience(75, name="Spring leads")
    Contact.objects.filter(phone__in=["+12125550003", "+12125550004"]).update(opted_out=True)
    Contact.objects.filter(phone="+12125550005").update(is_fixed_line=True, last_name="Lane", email="l@example.com")
    counts = selectors.list_counts([big.pk])[big.pk]

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/campaigns/contactlist/")
    row = page.locator("#result_list tr", has_text="Spring leads")
    assert [row.locator(f"td.field-{c}").inner_text() for c in ("member_count", "opted_out_count",
                                                                   "landline_count")] == ["75", "2", "1"]
    page.screenshot(path=str(tmp_path / "lists.png"), full_page=True)

    page.click("text=Spring leads")
    shown = {k: page.locator(f'#list-counts [data-count="{k}"]').inner_text() for k in ("members", "sendable",
                                                                                           "opted_out", "landline")}
    assert shown == {"members": str(counts.members), "sendable": str(counts.sendable),
                     "opted_out": str(counts.opted_out), "landline": str(counts.landline)}
    assert page.locator("#list-members tbody tr").count() == 50
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)
    page.click("#list-members-paginator >> text=2")
    page.wait_for_url("**?p=2")
    assert page.locator("#list-members tbody tr").count() == 25

    page.fill("#searchbar", "(212) 555-0005")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=*")
    assert page.locator("#list-members tbody tr").count() == 1
    page.screenshot(path=str(tmp_path / "list-search.png"), full_page=True)
    page.click("#list-members >> text=+12125550005")
    page.wait_for_selector("#id_new_custom_field_name")

    page.fill("#id_new_custom_field_name", "company")
    page.fill("#id_new_custom_field_value", "Acme")
    page.select_option("#id_timezone", "America/New_York")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert page.locator("#id_custom__company").input_value() == "Acme"
    page.screenshot(path=str(tmp_path / "contact.png"), full_page=True)
    contact = Contact.objects.get(phone="+12125550005")
    assert (contact.custom_fields, contact.timezone) == ({"company": "Acme"}, "America/New_York")
