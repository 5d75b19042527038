"""Sending windows in each recipient's local time: the recipient's zone, when a window is open and when it next
opens (fixed instants, across daylight-saving changes), and the send path holding a message until its window
opens, then sending it once. Provider HTTP goes to the emulator; our database is real."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from messaging.models import Dispatch, Message
from messaging.selectors import campaign_counts, campaign_counts_exact, campaign_waiting_for_window
from messaging.services import dispatch_open, messages_move, messages_send
from messaging.windows import Window, next_opening, recipient_timezone, window_open
from tests.support import wait_until

S = Message.Status
NY, LA, LONDON, SYDNEY = "America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney"


def local(zone: str, *args, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- the recipient's zone -------------------------------------------------------------------------


@pytest.mark.parametrize(("phone", "zone"), [
    ("+12125550123", NY),  # area code 212: New York
    ("+14155550123", LA),  # area code 415: San Francisco
    ("+61291234567", SYDNEY),  # (02) landline: New South Wales
])
def test_the_zone_comes_from_the_numbers_country_and_area_code(phone, zone):
    assert recipient_timezone(phone, "", "Europe/Paris") == zone


def test_the_contacts_own_zone_wins():
    assert recipient_timezone("+12125550123", "Asia/Tokyo", "Europe/Paris") == "Asia/Tokyo"


@pytest.mark.parametrize("contact_zone", ["Mars/Olympus_Mons", "Etc/Unknown", "../etc/passwd", " "])
def test_a_contact_zone_that_is_not_a_zone_is_ignored(contact_zone):
    assert recipient_timezone("+12125550123", contact_zone, "Europe/Paris") == NY


@pytest.mark.parametrize("phone", ["+999123", "+441632960000", "12125550123", "", "not a number"])
def test_a_number_without_zone_data_takes_the_campaigns_zone(phone):
    """No country, a number of a range no zone is known for (Etc/Unknown), no international form."""
    assert recipient_timezone(phone, "", "Europe/Paris") == "Europe/Paris"


def test_a_number_of_several_zones_takes_the_campaigns_zone_when_it_is_one_of_them_else_the_first():
    mobile = "+61412345678"  # Australian mobiles: any Australian zone
    assert recipient_timezone(mobile, "", "Australia/Perth") == "Australia/Perth"
    assert recipient_timezone(mobile, "", "Europe/Paris") == "Australia/Adelaide"


def test_without_any_known_zone_the_window_is_read_in_utc():
    assert recipient_timezone("+999123", "", "") == "UTC"
    assert recipient_timezone("+999123", "", "Nowhere/Special") == "UTC"


def test_numbers_of_one_prefix_share_one_lookup_and_still_get_their_own_zone():
    assert [recipient_timezone(f"+1212555{n:04d}", "", "UTC") for n in range(50)] == [NY] * 50
    assert recipient_timezone("+12135550123", "", "UTC") == LA  # 213: Los Angeles, one digit apart


# ---- open, and when -------------------------------------------------------------------------------

DAY = Window(start=time(9), end=time(21), timezone=NY)


def test_a_window_is_open_from_its_start_up_to_its_end():
    assert not window_open(DAY, NY, local(NY, 2024, 6, 3, 8, 59, 59))
    assert window_open(DAY, NY, local(NY, 2024, 6, 3, 9, 0))
    assert window_open(DAY, NY, local(NY, 2024, 6, 3, 20, 59, 59))
    assert not window_open(DAY, NY, local(NY, 2024, 6, 3, 21, 0))


def test_the_window_is_read_on_the_recipients_clock():
    at = utc(2024, 6, 3, 14, 0)  # 10:00 in New York, 07:00 in Los Angeles
    assert window_open(DAY, NY, at)
    assert not window_open(DAY, LA, at)
    assert next_opening(DAY, LA, at) == local(LA, 2024, 6, 3, 9, 0) == utc(2024, 6, 3, 16, 0)


def test_when_open_the_next_opening_is_now():
    at = local(NY, 2024, 6, 3, 12, 0)
    assert next_opening(DAY, NY, at) == at
    assert next_opening(DAY, NY, at).tzinfo == UTC


def test_after_the_window_closes_it_next_opens_the_next_morning():
    assert next_opening(DAY, NY, local(NY, 2024, 6, 3, 22, 30)) == local(NY, 2024, 6, 4, 9, 0)
    assert next_opening(DAY, NY, local(NY, 2024, 6, 30, 21, 0)) == local(NY, 2024, 7, 1, 9, 0)  # and a month
    assert next_opening(DAY, NY, local(NY, 2024, 12, 31, 23, 0)) == local(NY, 2025, 1, 1, 9, 0)  # and a year


def test_a_window_can_cross_midnight():
    night = Window(start=time(20), end=time(2), timezone=NY)
    assert window_open(night, NY, local(NY, 2024, 6, 3, 23, 0))
    assert window_open(night, NY, local(NY, 2024, 6, 4, 1, 59))
    assert not window_open(night, NY, local(NY, 2024, 6, 4, 2, 0))
    assert not window_open(night, NY, local(NY, 2024, 6, 4, 12, 0))
    assert next_opening(night, NY, local(NY, 2024, 6, 4, 2, 0)) == local(NY, 2024, 6, 4, 20, 0)
    assert next_opening(night, NY, local(NY, 2024, 6, 4, 1, 0)) == local(NY, 2024, 6, 4, 1, 0)


def test_a_window_whose_start_is_its_end_is_always_open():
    always = Window(start=time(9), end=time(9), timezone=NY)
    for hour in (0, 8, 9, 23):
        at = local(NY, 2024, 6, 3, hour, 30)
        assert window_open(always, NY, at) and next_opening(always, NY, at) == at


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        window_open(DAY, NY, datetime(2024, 6, 3, 12, 0))


# Daylight saving, 2024: New York goes forward on March 10 (02:00 EST -> 03:00 EDT) and back on November 3
# (02:00 EDT -> 01:00 EST); London forward on March 31 (01:00 GMT -> 02:00 BST) and back on October 27
# (02:00 BST -> 01:00 GMT); Sydney, in the southern hemisphere, back on April 7 (03:00 AEDT -> 02:00 AEST) and
# forward on October 6 (02:00 AEST -> 03:00 AEDT).


def test_a_morning_window_opens_at_its_local_time_on_both_sides_of_a_change():
    assert next_opening(DAY, NY, local(NY, 2024, 3, 9, 22, 0)) == utc(2024, 3, 10, 13, 0)  # 09:00 EDT
    assert next_opening(DAY, NY, local(NY, 2024, 11, 2, 22, 0)) == utc(2024, 11, 3, 14, 0)  # 09:00 EST
    assert next_opening(DAY, SYDNEY, local(SYDNEY, 2024, 4, 6, 22, 0)) == utc(2024, 4, 6, 23, 0)  # 09:00 AEST


@pytest.mark.parametrize(("zone", "closed", "opens"), [
    (NY, local(NY, 2024, 3, 10, 1, 0), utc(2024, 3, 10, 7, 0)),  # 03:00 EDT
    (LONDON, local(LONDON, 2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 0)),  # 02:00 BST (for a 01:30 opening)
    (SYDNEY, local(SYDNEY, 2024, 10, 6, 1, 0), utc(2024, 10, 5, 16, 0)),  # 03:00 AEDT
])
def test_an_opening_the_clocks_skip_opens_when_they_go_forward(zone, closed, opens):
    start = time(1, 30) if zone == LONDON else time(2, 30)
    window = Window(start=start, end=time(21), timezone=zone)
    assert not window_open(window, zone, closed)
    assert next_opening(window, zone, closed) == opens
    assert window_open(window, zone, opens)
    assert not window_open(window, zone, opens - timedelta(seconds=1))  # 01:59:59 before the change


def test_a_window_wholly_in_the_skipped_hour_does_not_open_that_day():
    window = Window(start=time(2, 10), end=time(2, 40), timezone=NY)
    assert next_opening(window, NY, local(NY, 2024, 3, 10, 1, 0)) == local(NY, 2024, 3, 11, 2, 10)


@pytest.mark.parametrize(("zone", "closed", "start", "opens"), [
    (NY, local(NY, 2024, 11, 3, 0, 0), time(1, 30), utc(2024, 11, 3, 5, 30)),  # the first 01:30 (EDT)
    (LONDON, local(LONDON, 2024, 10, 27, 0, 0), time(1, 30), utc(2024, 10, 27, 0, 30)),  # the first (BST)
    (SYDNEY, local(SYDNEY, 2024, 4, 7, 1, 0), time(2, 30), utc(2024, 4, 6, 15, 30)),  # the first (AEDT)
])
def test_an_opening_the_clocks_show_twice_opens_at_the_first(zone, closed, start, opens):
    window = Window(start=start, end=time(21), timezone=zone)
    assert next_opening(window, zone, closed) == opens
    assert window_open(window, zone, opens)
    assert window_open(window, zone, opens + timedelta(hours=1))  # the repeated hour is in the window


def test_in_the_repeated_hour_the_window_follows_the_clock_shown():
    """09:00–01:30 closes at the first 01:30; the clocks then show 01:00 again, inside the window until the
    second 01:30."""
    window = Window(start=time(9), end=time(1, 30), timezone=NY)
    first_close = local(NY, 2024, 11, 3, 1, 30)
    assert not window_open(window, NY, first_close)
    assert next_opening(window, NY, first_close) == utc(2024, 11, 3, 6, 0)  # 01:00 EST, the second 01:00
    assert not window_open(window, NY, local(NY, 2024, 11, 3, 1, 30, fold=1))


# ---- the send path --------------------------------------------------------------------------------


@pytest.fixture
def send_engine(engine, db):
    engine.PROVIDER_TIMEOUT = 3
    return engine


def launched_with_window(make_sender, make_audience, make_campaign, lists_prefixes, window: Window):
    from campaigns.services import campaign_launch

    lists = [make_audience(1, prefix=prefix) for prefix in lists_prefixes]
    campaign = make_campaign(make_sender("plivo"), lists)
    campaign_launch(campaign=campaign)
    Dispatch.objects.filter(campaign_id=campaign.pk).update(
        window_start=window.start, window_end=window.end, window_timezone=window.timezone)
    return campaign, {m.to[:5]: m for m in Message.objects.filter(campaign=campaign)}


def opening_in_la_soon(seconds: int = 4) -> Window:
    """A window that opens in Los Angeles in a few seconds and lasts four hours: open now in New York (three
    hours ahead), closed in Los Angeles until then."""
    now_la = timezone.now().astimezone(ZoneInfo(LA))
    start = (now_la + timedelta(seconds=seconds + 1)).replace(microsecond=0)
    return Window(start=start.time(), end=(now_la + timedelta(hours=4)).time(), timezone="Europe/Paris")


def test_a_message_outside_its_window_waits_for_it_then_is_sent_once(
    send_engine, make_sender, make_audience, make_campaign, sandbox
):
    from campaigns.models import Campaign
    from campaigns.services import campaign_dispatch

    window = opening_in_la_soon()
    campaign, messages = launched_with_window(make_sender, make_audience, make_campaign, ["+1212555", "+1415555"],
                                              window)
    new_york, los_angeles = messages["+1212"], messages["+1415"]
    before = timezone.now()
    opening = next_opening(window, LA, before)
    assert opening > before

    words = messages_send(message_ids=[new_york.pk, los_angeles.pk])

    assert (words["sent"], words["deferred"]) == (1, 1)
    new_york.refresh_from_db()
    los_angeles.refresh_from_db()
    assert new_york.status == S.SENT
    assert (los_angeles.status, los_angeles.attempts, los_angeles.next_attempt_at) == (S.QUEUED, 0, opening)
    assert los_angeles.dispatched_at is None and not los_angeles.body  # nothing rendered, nothing sent
    assert los_angeles.error_message == f"Waiting for its sending window ({window} {LA})."
    assert campaign_waiting_for_window(campaign.pk) == 1
    assert [m["to"] for m in sandbox.ledger(detail=True)["messages"]] == [new_york.to.lstrip("+")]
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)

    # New York's message is done; the campaign still waits for Los Angeles, and nothing is due before its window.
    messages_move(Message.objects.filter(pk=new_york.pk), S.DELIVERED, from_statuses=(S.SENT,))
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 0}
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    assert messages_send(message_ids=[los_angeles.pk])["skipped"] == 1  # not due: nobody can claim it early

    wait_until(lambda: timezone.now() >= opening, timeout=15, message="the window to open in Los Angeles")
    assert campaign_dispatch(campaign_id=campaign.pk) == {"enqueued": 1}  # due again, enqueued at its opening
    assert messages_send(message_ids=[los_angeles.pk])["sent"] == 1
    assert messages_send(message_ids=[los_angeles.pk])["skipped"] == 1
    los_angeles.refresh_from_db()
    assert (los_angeles.status, los_angeles.attempts, los_angeles.error_message) == (S.SENT, 1, "")
    assert los_angeles.body.startswith("Hi Person0")
    assert campaign_waiting_for_window(campaign.pk) == 0
    ledger = sandbox.ledger(detail=True)
    assert (ledger["accepted"], ledger["duplicates"]) == (2, 0)
    assert sorted(m["to"] for m in ledger["messages"]) == sorted(m.to.lstrip("+") for m in (new_york, los_angeles))
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)


def test_the_contacts_zone_decides_over_its_number(send_engine, make_sender, make_audience, make_campaign, sandbox):
    from campaigns.models import Contact

    campaign, messages = launched_with_window(make_sender, make_audience, make_campaign, ["+1212555"],
                                              opening_in_la_soon(seconds=60))
    Contact.objects.filter(phone=messages["+1212"].to).update(timezone=LA)  # a New York number, living in LA

    assert messages_send(message_ids=[messages["+1212"].pk])["deferred"] == 1
    assert campaign_waiting_for_window(campaign.pk) == 1
    assert sandbox.ledger()["accepted"] == 0


def test_many_messages_waiting_for_one_opening_are_given_back_together(
    send_engine, make_sender, make_audience, make_campaign, sandbox, django_assert_max_num_queries
):
    from campaigns.services import campaign_launch

    campaign = make_campaign(make_sender("plivo"), [make_audience(40, prefix="+1415555")])
    campaign_launch(campaign=campaign)
    window = opening_in_la_soon(seconds=600)
    Dispatch.objects.filter(campaign_id=campaign.pk).update(
        window_start=window.start, window_end=window.end, window_timezone=window.timezone)
    ids = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True))

    with django_assert_max_num_queries(25):  # not a few statements per message
        words = messages_send(message_ids=ids)

    assert words["deferred"] == 40
    assert set(Message.objects.filter(campaign=campaign).values_list("status", "attempts")) == {(S.QUEUED, 0)}
    assert campaign_waiting_for_window(campaign.pk) == 40
    assert campaign_counts(campaign_id=campaign.pk) == campaign_counts_exact(campaign_id=campaign.pk)
    assert sandbox.ledger()["accepted"] == 0


def test_dispatch_open_keeps_the_window(make_sender, make_audience, make_campaign, db):
    sender = make_sender("plivo")
    window = Window(start=time(9), end=time(21), timezone=NY)
    cases = ((window, (time(9), time(21), NY)), (Window(time(9), time(9), NY), (None, None, "")),
             (None, (None, None, "")))
    for n, (given, stored) in enumerate(cases):
        campaign = make_campaign(sender, [make_audience(1, start=n)])
        dispatch = dispatch_open(campaign_id=campaign.pk, name=campaign.name, template="Hi", media_urls=[],
                                 sender_ids=[sender.pk], backup_sender_id=None, window=given)
        dispatch.refresh_from_db()
        assert (dispatch.window_start, dispatch.window_end, dispatch.window_timezone) == stored
