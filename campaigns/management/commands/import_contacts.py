"""Import contacts (or a suppression list) from a CSV or XLSX file, to the end, and print the summary."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaigns.imports import mapping as mapping_mod
from campaigns.imports.mapping import MappingError
from campaigns.imports.readers import ImportFileError
from campaigns.imports.services import contact_import_run, import_checks, import_file_open
from campaigns.models import ImportJob


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV or XLSX file into a list. Columns are mapped by their header (phone, mobile, "
        "cell, phone number, msisdn; first name, given name; last name, surname; email; timezone); every other "
        "column becomes a custom field. Override with --map COLUMN=FIELD."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--list", dest="list_name",
                            help="list to add the contacts to (created with the first contacts written)")
        parser.add_argument("--region", default=settings.PHONENUMBER_DEFAULT_REGION,
                            help="default country for numbers written without a country code, as an ISO 3166 "
                            "code such as US or GB; '' for none (default %(default)s)")
        parser.add_argument("--errors", dest="report", help="write rows that were not imported as written to this CSV")
        parser.add_argument("--map", dest="overrides", action="append", default=[], metavar="COLUMN=FIELD",
                            help="map a column to phone, first_name, last_name, email, timezone, ignore, or a "
                            "custom field name; may be repeated")
        parser.add_argument("--policy", choices=[p.value for p in ImportJob.Policy], default=ImportJob.Policy.UPDATE,
                            help="for a number already known: update the contact or keep it as it is")
        parser.add_argument("--suppression", action="store_true",
                            help="the file lists numbers that opted out: record them in the consent ledger")
        parser.add_argument("--max-mb", type=float, default=settings.IMPORT_MAX_BYTES / (1024 * 1024),
                            help="refuse larger files (default %(default)s, from IMPORT_MAX_BYTES); 0 for no limit")
        parser.add_argument("--dry-run", action="store_true", help="only show the detected format and mapping")

    def handle(self, *args, **opts):
        kind = ImportJob.Kind.SUPPRESSION if opts["suppression"] else ImportJob.Kind.CONTACTS
        if kind == ImportJob.Kind.CONTACTS and not opts["list_name"] and not opts["dry_run"]:
            raise CommandError("Name the list the contacts go into with --list NAME.")
        max_bytes = int(opts["max_mb"] * 1024 * 1024) or None
        try:
            with import_file_open(path=opts["file"], max_bytes=max_bytes) as table:
                header, description = table.header, table.describe()
            mapping = mapping_mod.apply_overrides(header, mapping_mod.auto_map(header), opts["overrides"])
            mapping, region = import_checks(path=opts["file"], mapping=mapping, region=opts["region"],
                                            max_bytes=max_bytes)
        except (ImportFileError, MappingError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{opts['file']}: {description}")
        for name, target in zip(header, mapping, strict=False):
            self.stdout.write(f"  {name!r} -> {mapping_mod.describe(target)}")
        if opts["dry_run"]:
            return
        progress = self._progress if sys.stdout.isatty() and opts["verbosity"] >= 1 else None
        try:
            summary = contact_import_run(
                path=opts["file"], mapping=mapping, region=region, policy=opts["policy"], kind=kind,
                contact_list_name=opts["list_name"] if kind == ImportJob.Kind.CONTACTS else "",
                report_path=opts["report"], max_bytes=max_bytes,
                detail=f"suppression list {opts['file']} (command line)", on_progress=progress,
            )
        except (ImportFileError, MappingError) as exc:
            raise CommandError(str(exc)) from None
        if progress:
            self.stdout.write("")
        style = self.style.WARNING if summary.cut else self.style.SUCCESS
        self.stdout.write(style(str(summary)))
        if opts["report"]:
            if summary.invalid or summary.duplicate or summary.warnings:
                self.stdout.write(f"Problems written to {opts['report']}")
            else:
                self.stdout.write("No problems to report.")
        if summary.cut:
            raise CommandError(summary.cut_message())

    def _progress(self, summary, fraction):
        self.stdout.write(f"\r{fraction * 100:5.1f}%  {summary.rows} rows", ending="")
        self.stdout.flush()
