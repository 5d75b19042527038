from django.core.management.base import BaseCommand

from messaging.sandbox.core import Options, run


class Command(BaseCommand):
    help = "Run the local provider emulator (all providers' wire formats) on one port."

    def add_arguments(self, parser):
        d = Options()
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument("--latency-ms", type=float, default=d.latency_ms, help="added to every API answer")
        parser.add_argument("--callback-delay-ms", type=float, default=d.callback_delay_ms)
        parser.add_argument("--delivered", type=float, default=d.delivered, help="share delivered")
        parser.add_argument("--undelivered", type=float, default=d.undelivered, help="share undelivered")
        parser.add_argument("--failed", type=float, default=d.failed, help="share failed (documented codes)")
        parser.add_argument("--error-5xx", type=float, default=0.0, help="share of sends answered 5xx")
        parser.add_argument("--rate-429", type=float, default=0.0, help="share of sends answered 429")
        parser.add_argument("--sender-mps", type=float, default=0.0, help="per-sender limit; over it 429")
        parser.add_argument("--ambiguous", type=float, default=0.0, help="share accepted then dropped unanswered")
        parser.add_argument("--duplicate-callbacks", type=float, default=0.0)
        parser.add_argument("--reorder-callbacks", type=float, default=0.0)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **o):
        options = Options(
            latency_ms=o["latency_ms"],
            callback_delay_ms=o["callback_delay_ms"],
            delivered=o["delivered"],
            undelivered=o["undelivered"],
            failed=o["failed"],
            error_5xx=o["error_5xx"],
            rate_429=o["rate_429"],
            sender_mps=o["sender_mps"],
            ambiguous=o["ambiguous"],
            duplicate_callbacks=o["duplicate_callbacks"],
            reorder_callbacks=o["reorder_callbacks"],
            seed=o["seed"],
        )
        self.stdout.write(f"Provider emulator on http://{o['host']}:{o['port']}/ (ledger: /sandbox/ledger)")
        run(host=o["host"], port=o["port"], options=options)
