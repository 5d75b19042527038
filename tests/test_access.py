"""Who may do what, tried as each role: every admin action, every staff URL outside the admin's standard pages,
and the add/change/delete rights on every model, allowed or refused as designed.

The tables below are the design. A new admin action or staff URL that is not in them fails
``test_every_action_is_in_the_table`` / ``test_every_staff_url_is_in_the_table``: it must be given a permission
(and a line here) before it ships."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import get_resolver, reverse

from campaigns.roles import ADMINISTRATOR, CAMPAIGN_MANAGER, VIEWER

pytestmark = pytest.mark.django_db

APPS = ("campaigns", "messaging")
ROLES = (None, VIEWER, CAMPAIGN_MANAGER, ADMINISTRATOR)

# ---- admin actions: (model, action) -> the roles that are offered it (and only they can run it) --------------

MANAGER_UP = {CAMPAIGN_MANAGER, ADMINISTRATOR}
ADMIN_ONLY = {ADMINISTRATOR}

ACTIONS: dict[tuple[str, str], set[str]] = {
    ("campaigns.campaign", "launch_selected"): MANAGER_UP,
    ("campaigns.contactlist", "export_csv"): MANAGER_UP,
    ("campaigns.contact", "add_to_list"): MANAGER_UP,
    ("campaigns.contact", "remove_from_list"): MANAGER_UP,
    ("campaigns.contact", "add_tag"): MANAGER_UP,
    ("campaigns.contact", "remove_tag"): MANAGER_UP,
    ("campaigns.contact", "opt_out"): MANAGER_UP,
    ("campaigns.contact", "opt_in"): ADMIN_ONLY,
    ("campaigns.contact", "clear_number_flag"): MANAGER_UP,
    ("campaigns.contact", "export_csv"): MANAGER_UP,
    ("messaging.message", "resend_unconfirmed"): MANAGER_UP,
    ("messaging.message", "confirm_sent"): MANAGER_UP,
    ("messaging.sender", "check_credentials"): ADMIN_ONLY,
    ("messaging.consentevent", "undo"): ADMIN_ONLY,
    ("messaging.reply", "mark_read"): MANAGER_UP,
    ("messaging.reply", "mark_unread"): MANAGER_UP,
}

# Models a Campaign manager may add to and change; an Administrator may change everything the admin lets anyone
# change; a Viewer nothing.
MANAGER_EDITS = {"campaigns.campaign", "campaigns.contact", "campaigns.contactlist", "campaigns.tag"}
MANAGER_ADDS = MANAGER_EDITS | {"campaigns.importjob"}
MANAGER_DELETES = {"campaigns.importjob", "campaigns.campaign"}  # a campaign only while a draft
ADMIN_ONLY_PAGES = {"messaging.auditentry"}  # the audit log


def product_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in APPS]


def label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def request_as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_every_action_is_in_the_table():
    declared = {(label(model), name) for model, model_admin in product_admins()
                for name in (model_admin.actions or ()) if isinstance(name, str)}
    assert declared == set(ACTIONS), "an admin action without a line in ACTIONS (and a permission)"
    for model, model_admin in product_admins():
        for name in model_admin.actions or ():
            func = getattr(model_admin, name)
            assert getattr(func, "allowed_permissions", None), f"{label(model)}: {name} declares no permission"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-role")
def test_each_role_is_offered_exactly_its_actions(roles, role):
    user = roles.user(role)
    for model, model_admin in product_admins():
        offered = set(model_admin.get_actions(request_as(user)))
        for name in model_admin.actions or ():
            expected = role in ACTIONS[(label(model), name)]
            assert (name in offered) == expected, f"{role}: {label(model)} {name}"
        if "delete_selected" in offered:
            assert model_admin.has_delete_permission(request_as(user))


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "no-role")
def test_each_role_adds_changes_and_deletes_only_what_it_should(roles, role):
    user = roles.user(role)
    for model, model_admin in product_admins():
        request = request_as(user)
        name = label(model)
        may_add = model_admin.has_add_permission(request)
        may_change = model_admin.has_change_permission(request)
        may_delete = model_admin.has_delete_permission(request)
        if role in (None, VIEWER):
            assert not (may_add or may_change or may_delete), f"{role}: may edit {name}"
        elif role == CAMPAIGN_MANAGER:
            assert may_add <= (name in MANAGER_ADDS), f"manager may add {name}"
            assert may_change <= (name in MANAGER_EDITS), f"manager may change {name}"
            assert may_delete <= (name in MANAGER_DELETES), f"manager may delete {name}"
        if role is not None:
            sees = model_admin.has_view_permission(request)
            assert sees == (role == ADMINISTRATOR or name not in ADMIN_ONLY_PAGES), f"{role}: sees {name}: {sees}"
    if role == CAMPAIGN_MANAGER:
        from campaigns.models import Campaign, Contact, ImportJob

        for model in (Campaign, Contact):
            assert admin.site._registry[model].has_change_permission(request_as(user))
        assert admin.site._registry[ImportJob].has_add_permission(request_as(user))
    if role == ADMINISTRATOR:
        from messaging.models import ConsentEvent, Sender

        assert admin.site._registry[Sender].has_change_permission(request_as(user))
        assert admin.site._registry[ConsentEvent].has_add_permission(request_as(user))
        assert user.has_perm("auth.change_user")
        assert user.has_perm("axes.delete_accessattempt")  # clears a login lockout


# ---- staff URLs: name -> (method, permissions needed; a tuple inside means "any of these") ---------------------

URLS: dict[str, list[tuple[str, dict, str, list]]] = {
    "campaigns:campaign_action": [
        ("post", {"action": "pause"}, "campaign", ["campaigns.launch_campaign"]),
        ("post", {"action": "resume"}, "campaign", ["campaigns.launch_campaign"]),
        ("post", {"action": "cancel"}, "campaign", ["campaigns.cancel_campaign"]),
        ("post", {"action": "test_send"}, "campaign", ["campaigns.test_send_campaign"]),
    ],
    "campaigns:campaign_confirm": [
        ("get", {"action": "launch"}, "campaign", ["campaigns.launch_campaign"]),
        ("post", {"action": "launch"}, "campaign", ["campaigns.launch_campaign"]),
        ("get", {"action": "schedule"}, "campaign", ["campaigns.launch_campaign"]),
        ("get", {"action": "resend_failed"}, "campaign", ["campaigns.resend_campaign"]),
        ("post", {"action": "resend_failed"}, "campaign", ["campaigns.resend_campaign"]),
    ],
    "campaigns:compose_preview": [("post", {}, "", [("campaigns.add_campaign", "campaigns.change_campaign")])],
    "campaigns:campaign_stats": [("get", {}, "campaign", ["campaigns.view_campaign"])],
    "campaigns:campaign_export": [
        ("get", {"fmt": "csv"}, "campaign", ["campaigns.export_campaign"]),
        ("get", {"fmt": "xlsx"}, "campaign", ["campaigns.export_campaign"]),
    ],
    "campaigns:import_progress": [("get", {}, "job", ["campaigns.view_importjob"])],
    "campaigns:import_report": [("get", {}, "job", ["campaigns.view_importjob"])],
    "admin:campaigns_importjob_mapping": [("get", {}, "job", ["campaigns.add_importjob"])],
    "admin:campaigns_importjob_resume": [("post", {}, "job", ["campaigns.view_importjob", "campaigns.add_importjob"])],
    "admin:messaging_reply_conversation": [
        ("get", {}, "reply", ["messaging.view_message"]),
        ("post", {}, "reply", ["messaging.view_message", "messaging.answer_message"]),
    ],
}

STANDARD_ADMIN_SUFFIXES = ("_changelist", "_add", "_history", "_delete", "_change")


def staff_url_names() -> set[str]:
    names = set()
    resolver = get_resolver()
    for pattern in resolver.url_patterns:
        if getattr(pattern, "namespace", None) == "campaigns":
            names |= {f"campaigns:{p.name}" for p in pattern.url_patterns if p.name}
    for model, model_admin in product_admins():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        for p in model_admin.get_urls():
            if p.name and not any(p.name == info + suffix for suffix in STANDARD_ADMIN_SUFFIXES):
                names.add(f"admin:{p.name}")
    return names


def test_every_staff_url_is_in_the_table():
    assert staff_url_names() == set(URLS), "a staff URL without a line in URLS (and a permission check)"


def test_every_campaign_control_is_in_the_table():
    from campaigns.views import ACTIONS as CONTROLS
    from campaigns.views import CONFIRMED

    assert {kw["action"] for _m, kw, _o, _p in URLS["campaigns:campaign_action"]} == set(CONTROLS)
    assert {kw["action"] for _m, kw, _o, _p in URLS["campaigns:campaign_confirm"]} == set(CONFIRMED)


def _allowed(user: User, needed: list) -> bool:
    return all(any(user.has_perm(p) for p in need) if isinstance(need, tuple) else user.has_perm(need)
               for need in needed)


CASES = [(name, *case) for name, cases in URLS.items() for case in cases]


@pytest.mark.parametrize("role", (*ROLES, "view campaign only", "change campaign only"), ids=lambda r: r or "no-role")
@pytest.mark.parametrize("name,method,kwargs,obj,needed", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2].get('action', c[2].get('fmt', ''))}" for c in CASES])
def test_each_staff_url_answers_as_the_role_allows(client, roles, make_sender, make_audience, make_campaign, engine,
                                                   role, name, method, kwargs, obj, needed):
    from campaigns.imports.services import import_job_create
    from campaigns.models import Campaign

    if role in ("view campaign only", "change campaign only"):
        user = roles.user(None)
        user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
        if role == "change campaign only":
            user.user_permissions.add(Permission.objects.get(codename="change_campaign"))
        user = User.objects.get(pk=user.pk)
    else:
        user = roles.user(role)
    campaign = make_campaign(make_sender("plivo"), [make_audience(3)])
    args = []
    if obj == "campaign":
        args = [campaign.pk]
    elif obj == "job":
        job = import_job_create(upload=SimpleUploadedFile("people.csv", b"phone\n+12125550100\n"), user=None)
        args = [job.pk]
    elif obj == "reply":
        from messaging.models import Message

        reply = Message.objects.create(sender=campaign.sender, direction="inbound", to="+12125550100", body="Hello",
                                       status="received")
        args = [reply.pk]
    url = reverse(name, args=args + [kwargs[key] for key in ("action", "fmt") if key in kwargs])
    client.force_login(user)
    data = {"body": "Hi", "phone": "", "sender": campaign.sender_id} if method == "post" else {}
    response = getattr(client, method)(url, data)
    allowed = _allowed(user, needed)
    if allowed:
        assert response.status_code not in (401, 403), f"{role} refused {name} {kwargs}"
        assert "/login/" not in response.get("Location", ""), f"{role} sent to log in for {name} {kwargs}"
    else:
        assert response.status_code == 403, f"{role} was let through {name} {kwargs}: {response.status_code}"
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.DRAFT
        if obj == "reply":
            assert not Message.objects.filter(direction="outbound", kind="answer").exists()


def test_the_attacks_from_the_report_are_refused(client, roles, make_sender, make_audience, make_campaign, engine):
    """A user with only "view campaign" launched through the changelist action; one with only "change campaign"
    could launch and cancel; one with only "view contact" opted contacts out and in; one with only "view sender"
    made the server call a provider with the stored credentials."""
    from campaigns.models import Campaign, Contact
    from messaging.models import ConsentEvent

    sender = make_sender("plivo")
    audience = make_audience(3)
    campaign = make_campaign(sender, [audience])
    for codenames in (["view_campaign"], ["view_campaign", "change_campaign"]):
        user = roles.user(None)
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        client.force_login(User.objects.get(pk=user.pk))
        client.post(reverse("admin:campaigns_campaign_changelist"),
                    {"action": "launch_selected", "_selected_action": [campaign.pk], "confirm": "yes"})
        assert client.post(reverse("campaigns:campaign_action", args=[campaign.pk, "cancel"])).status_code == 403
        assert client.get(reverse("campaigns:campaign_confirm", args=[campaign.pk, "launch"])).status_code == 403
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.DRAFT

    viewer = roles.user(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_contact"))
    client.force_login(User.objects.get(pk=viewer.pk))
    ids = list(Contact.objects.filter(lists=audience).values_list("pk", flat=True))
    for action in ("opt_out", "opt_in", "export_csv"):
        response = client.post(reverse("admin:campaigns_contact_changelist"),
                               {"action": action, "_selected_action": ids})
        assert response.get("Content-Type", "").startswith("text/html")  # no CSV: the action did not run
    assert not ConsentEvent.objects.exists()

    sender_viewer = roles.user(None)
    sender_viewer.user_permissions.add(Permission.objects.get(codename="view_sender"))
    client.force_login(User.objects.get(pk=sender_viewer.pk))
    changelist = reverse("admin:messaging_sender_changelist")
    response = client.post(changelist, {"action": "check_credentials", "_selected_action": [sender.pk]}, follow=True)
    # The action reports each sender it checked as "<name>: <answer>"; refused, it checks none.
    assert not [m for m in response.context["messages"] if str(m).startswith(f"{sender.name}:")]
    administrator = roles.user(ADMINISTRATOR)
    client.force_login(administrator)
    response = client.post(changelist, {"action": "check_credentials", "_selected_action": [sender.pk]}, follow=True)
    assert [m for m in response.context["messages"] if str(m).startswith(f"{sender.name}:")]  # the test can fail


def test_the_campaign_page_shows_only_the_controls_a_role_may_use(client, roles, make_sender, make_audience,
                                                                 make_campaign, engine):
    campaign = make_campaign(make_sender("plivo"), [make_audience(3)])
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    client.force_login(roles.user(VIEWER))
    page = client.get(url).content.decode()
    for control in ('id="launch-campaign"', 'id="cancel-campaign"', 'class="test-send"'):
        assert control not in page
    client.force_login(roles.user(CAMPAIGN_MANAGER))
    page = client.get(url).content.decode()
    for control in ('id="launch-campaign"', 'id="cancel-campaign"', 'class="test-send"'):
        assert control in page
