"""The chaos tests' hands inside the stack they start: run as ``python -m tests.chaos.scenario <command>`` with
the stack's environment (its own database and broker), prints one JSON object.

  setup --recipients N --providers plivo,bandwidth --emulator URL [--mps M]
        senders (one per provider), a contact list of N and a draft campaign split over the senders
  launch --campaign ID        launch it, as staff do
  report --campaign ID        every message (number, status, provider id, sender) and the counts, by counters, by
                              COUNT(*) and by the dashboards' figures
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def setup(args) -> dict:
    from campaigns.models import Campaign, Contact, ContactList, ListMembership
    from messaging.providers import PROVIDERS
    from messaging.services import sender_create

    senders = []
    for n, provider in enumerate(args.providers.split(",")):
        cls = PROVIDERS[provider]
        senders.append(sender_create(
            name=f"Chaos {cls.name}", provider=provider, address=f"+1415556{n:04d}",
            credentials={key: f"chaos-{key}-value" for key in cls.credential_keys},
            api_base_url=args.emulator, mps=args.mps,
        ))
    contact_list = ContactList.objects.create(name=f"Chaos list of {args.recipients}")
    Contact.objects.bulk_create(
        [Contact(phone=f"+1213{n:07d}", first_name=f"P{n}") for n in range(args.recipients)], batch_size=2000)
    ids = Contact.objects.filter(phone__startswith="+1213").values_list("pk", flat=True)
    ListMembership.objects.bulk_create(
        [ListMembership(contact_id=pk, contact_list=contact_list) for pk in ids], batch_size=2000)
    campaign = Campaign.objects.create(name="Chaos campaign", sender=senders[0],
                                       body="Hi {{ first_name }}, this is the chaos campaign.")
    campaign.more_senders.set(senders[1:])
    campaign.lists.set([contact_list])
    return {"campaign": campaign.pk, "senders": [s.pk for s in senders]}


def launch(args) -> dict:
    from campaigns.models import Campaign
    from campaigns.services import campaign_launch

    result = campaign_launch(campaign=Campaign.objects.get(pk=args.campaign), check_media=False)
    return {"recipients": result.recipients}


def report(args) -> dict:
    from django.db.models import Sum

    from campaigns.models import Campaign
    from messaging.models import CampaignTally, Message, MessageEvent
    from messaging.selectors import campaign_counts, campaign_counts_exact

    campaign = Campaign.objects.get(pk=args.campaign)
    messages = list(Message.objects.filter(campaign_id=campaign.pk).values_list(
        "to", "status", "provider_message_id", "sender__provider", "attempts"))
    return {
        "status": campaign.status,
        "counters": campaign_counts(campaign_id=campaign.pk),
        "exact": campaign_counts_exact(campaign_id=campaign.pk),
        "tallies": {row["event"]: row["n"] for row in CampaignTally.objects.filter(campaign_id=campaign.pk)
                    .values("event").annotate(n=Sum("count")).order_by()},
        # Messages whose outcome was settled by asking the provider (an ambiguous send, a killed worker's claim,
        # reports the provider gave up posting), and those whose status came from callbacks.
        "reconciled": MessageEvent.objects.filter(message__campaign_id=campaign.pk, source=MessageEvent.Source.LOOKUP)
        .values("message_id").distinct().count(),
        "callback_events": MessageEvent.objects.filter(message__campaign_id=campaign.pk,
                                                       source=MessageEvent.Source.CALLBACK).count(),
        "messages": [{"to": str(to), "status": status, "provider_message_id": pid, "provider": provider,
                      "attempts": attempts} for to, status, pid, provider, attempts in messages],
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="tests.chaos.scenario")
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("setup")
    made.add_argument("--recipients", type=int, required=True)
    made.add_argument("--providers", default="plivo,bandwidth")
    made.add_argument("--emulator", required=True)
    made.add_argument("--mps", type=float, default=500.0)
    for name in ("launch", "report"):
        commands.add_parser(name).add_argument("--campaign", type=int, required=True)
    args = parser.parse_args(argv)
    _django()
    print(json.dumps({"setup": setup, "launch": launch, "report": report}[args.command](args)))


if __name__ == "__main__":
    main(sys.argv[1:])
