"""Development data for `make run`: an `admin` superuser, a Plivo sender on the local emulator, a list of
a few hundred contacts and a draft campaign. Safe to run again: it creates only what is missing, and a new
draft demo campaign whenever the previous one has been launched."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaigns.models import Campaign, Contact, ContactList, ListMembership
from messaging.services import sender_ensure

EMULATOR_PORT = 8025


class Command(BaseCommand):
    help = "Create the development superuser admin/admin and demo data (only what is missing)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=300)
        parser.add_argument("--emulator-port", type=int, default=EMULATOR_PORT,
                            help="port of the provider emulator (run_all --sandbox-port)")

    @transaction.atomic
    def handle(self, *args, contacts: int, emulator_port: int, **options):
        if not settings.DEBUG:
            # A superuser whose password everyone knows: never in production.
            raise CommandError("demo_setup creates the superuser admin/admin and demo data: development only "
                               "(DEBUG=true, as `make run` sets it). Nothing was created.")
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
        sender = sender_ensure(
            name="Demo Plivo number",
            provider="plivo",
            address="+14155550100",
            credentials={"auth_id": "MADEMOACCOUNT0000001", "auth_token": "demo-auth-token-not-secret"},
            api_base_url=emulator_url,
            mps=50,
        )
        demo_list, created = ContactList.objects.get_or_create(name="Demo list")
        if created:
            Contact.objects.bulk_create(
                [
                    Contact(phone=f"+1212555{i:04d}", first_name=f"Demo{i}", last_name="Person",
                            custom_fields={"city": "New York"})
                    for i in range(contacts)
                ],
                ignore_conflicts=True,
            )
            people = Contact.objects.filter(phone__in=[f"+1212555{i:04d}" for i in range(contacts)])
            ListMembership.objects.bulk_create(
                [ListMembership(contact=c, contact_list=demo_list) for c in people], ignore_conflicts=True
            )
        draft = Campaign.objects.filter(name__startswith="Demo campaign", status=Campaign.Status.DRAFT).first()
        if draft is None:
            earlier = Campaign.objects.filter(name__startswith="Demo campaign").count()
            draft = Campaign.objects.create(
                name="Demo campaign" if not earlier else f"Demo campaign {earlier + 1}",
                sender=sender,
                body='Hi {{ first_name|default:"there" }}, our {{ city }} store opens Saturday. Reply STOP to opt out.',
                created_by=User.objects.get(username="admin"),
            )
            draft.lists.set([demo_list])
        self.stdout.write(
            f"Demo data ready: sender '{sender.name}' on {sender.api_base_url}, list '{demo_list.name}', "
            f"draft campaign '{draft.name}'. Site: {settings.PUBLIC_BASE_URL}/admin/"
        )
