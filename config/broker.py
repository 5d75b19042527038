"""The embedded broker (`filesystem://`) with messages written atomically.

Kombu's filesystem transport creates a message file under its final name and then writes into it; a worker
polling the folder at that moment moves the file away and reads it empty, and the JSON error stops the
worker. Here a message is written to a hidden file first and renamed into place (a rename within one folder
is atomic on POSIX), so a reader only ever sees whole messages. Reading is kombu's own. Written by hand
because it is the one method to change and no maintained package offers it.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.partial")  # never matches a queue
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
