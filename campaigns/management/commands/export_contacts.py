"""Export contacts (all, or those of some lists) to CSV, spreadsheet-safe."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from campaigns.exports import contacts_export, lists_export
from campaigns.models import Contact, ContactList


class Command(BaseCommand):
    help = "Export contacts to CSV. Cells a spreadsheet would run as formulas are escaped with a leading '."

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="lists", action="append", default=[], metavar="NAME",
                            help="only the contacts of this list; may be repeated")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args, **opts):
        if opts["lists"]:
            lists = list(ContactList.objects.filter(name__in=opts["lists"]))
            missing = set(opts["lists"]) - {x.name for x in lists}
            if missing:
                raise CommandError(f"No list named {', '.join(sorted(missing))}.")
            lines = lists_export(lists=lists)
        else:
            lines = contacts_export(queryset=Contact.objects.all())
        if opts["output"]:
            with open(opts["output"], "w", encoding="utf-8-sig", newline="") as fh:
                fh.writelines(lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
