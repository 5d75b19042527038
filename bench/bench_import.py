"""Contact import benchmark: rows/s and peak memory for generated files (default 100k and 1M rows).

Not a test: it prints figures. Each size runs in its own process on a fresh test database (created and
destroyed with Django's test-database machinery), so peak memory is that of one import:

    .venv/bin/python bench/bench_import.py                       # SQLite (a throwaway VAR_DIR)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_import.py
    .venv/bin/python bench/bench_import.py --rows 100000 --format xlsx
    .venv/bin/python bench/bench_import.py --lean                # phone and first name only

The generated rows look like a CRM export: phone in a national format, names, email, two extra columns;
1% repeat an earlier number, 1% are not phone numbers. At 1,000,000 rows that file is about 76 MB, over
the default upload limit (IMPORT_MAX_BYTES, 50 MB): the admin would refuse it. The import is then run with
the limit raised to the file's size, and the output says so; ``--lean`` generates only the phone and first
name columns instead (1,000,000 rows in about 30 MB, under the limit).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A throwaway database, throwaway keys: the benchmark runs with DEBUG off, as production does, and the process
# of each size inherits them.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("CREDENTIALS_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())


def generate(path: Path, rows: int, file_format: str, lean: bool = False) -> None:
    header = ["Mobile", "First Name", "Last Name", "Email", "City", "Plan"]

    def full(n: int) -> list:
        if n % 100 == 99:
            return ["n/a", f"F{n}", f"L{n}", "", "Nowhere", ""]
        if n % 100 == 50:
            n -= 7  # same number as a row seen earlier
        number = 2_000_000 + n
        return [f"(212) {number // 10000:03d}-{number % 10000:04d}" if number < 10_000_000
                else f"(646) {number // 10000 - 1000:03d}-{number % 10000:04d}",
                f"First{n}", f"Last{n}", f"user{n}@example.com", "New York", "gold" if n % 3 else "silver"]

    row = full
    if lean:
        header = header[:2]

        def row(n: int) -> list:
            return full(n)[:2]

    if file_format == "xlsx":
        import openpyxl

        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(header)
        for n in range(rows):
            sheet.append(row(n))
        workbook.save(path)
        return
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for n in range(rows):
            writer.writerow(row(n))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def one(rows: int, file_format: str, lean: bool) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from campaigns.imports.mapping import auto_map
    from campaigns.imports.readers import open_table
    from campaigns.imports.services import contact_import_run
    from campaigns.models import Contact, ContactList

    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"contacts.{file_format}"
            generate(path, rows, file_format, lean)
            size = path.stat().st_size
            limit = settings.IMPORT_MAX_BYTES
            with open_table(path) as table:
                mapping = auto_map(table.header)
            contact_list = ContactList.objects.create(name="bench")
            before = rss_mb()
            started = time.perf_counter()
            summary = contact_import_run(path=path, mapping=mapping, region="US", contact_list_id=contact_list.pk,
                                         report_path=Path(tmp) / "problems.csv", max_bytes=max(limit, size))
            seconds = time.perf_counter() - started
            assert Contact.objects.count() == summary.created
        return {
            "database": connection.vendor,
            "format": file_format,
            "rows": rows,
            "file_mb": round(size / 1e6, 1),
            "limit_raised_from_mb": round(limit / 2**20) if size > limit else None,
            "seconds": round(seconds, 1),
            "rows_per_s": round(rows / seconds),
            "peak_rss_mb": round(rss_mb(), 1),
            "rss_before_import_mb": round(before, 1),
            "summary": summary.as_dict(),
        }
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--lean", action="store_true", help="only the phone and first name columns")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.format, args.lean)))
        return
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as var_dir:
        if "DATABASE_URL" not in env:
            env["VAR_DIR"] = var_dir  # a throwaway SQLite database, media and broker
        for rows in args.rows:
            command = [sys.executable, __file__, "--one", str(rows), "--format", args.format]
            out = subprocess.run(command + (["--lean"] if args.lean else []), env=env, cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if result["limit_raised_from_mb"]:
                print(f"{'':>10} note: a {result['file_mb']} MB file is over the {result['limit_raised_from_mb']} MB "
                      "upload limit (IMPORT_MAX_BYTES): the admin would refuse it; this run raises the limit "
                      "to its size (--lean generates a file under it)")
            print(f"{result['database']:>10} {result['format']:>4} {rows:>9,} rows ({result['file_mb']} MB): "
                  f"{result['seconds']:>6}s  {result['rows_per_s']:>7,} rows/s  peak RSS {result['peak_rss_mb']} MB "
                  f"(before import {result['rss_before_import_mb']} MB)  {result['summary']}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
