"""Which worker runs an import job, and whether it is still alive.

A job being imported has a lease: a small file ``imports/leases/import-<id>.lease`` in the media storage,
which the web process (that stores uploads) and the workers (that read them) already share. It names
its owner (a token, the process id and host); the owner touches it after every chunk it commits, so the
file's modification time is the heartbeat. A job put on the queue gets a lease without an owner, whose
age is then how long it has waited.

A lease is stale when its heartbeat is older than ``IMPORT_STALE_SECONDS``, or when its owner was a
process on this host that no longer exists (a worker killed with SIGKILL or by the out-of-memory killer).
A job whose lease is stale, or has no owner, can be claimed: the old file is renamed away and a new one
created exclusively, so of several processes claiming at once one normally wins. The lease is about
liveness; correctness does not depend on it: every chunk an import commits is conditional on the job's
committed row count, so a worker that lost its lease (paused, then woken up) can never commit over the
one that took over; it finds it has been overtaken and stops.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

DEFAULT_STALE_SECONDS = 300


def stale_seconds() -> int:
    return int(getattr(settings, "IMPORT_STALE_SECONDS", DEFAULT_STALE_SECONDS))


def lease_path(job_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / "leases" / f"import-{job_id}.lease"


@dataclass
class LeaseState:
    exists: bool
    held: bool = False  # by a worker (otherwise it only marks the job as put on the queue)
    age: float = 0.0  # seconds since the last heartbeat (or since it was put on the queue)
    owner_dead: bool = False  # the owner was a process on this host that is gone

    @property
    def stale(self) -> bool:
        return not self.exists or self.owner_dead or self.age > stale_seconds()

    @property
    def alive(self) -> bool:
        """A worker holds the job and has shown signs of life lately."""
        return self.held and not self.stale


def _owner_gone(owner: dict) -> bool:
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def lease_state(job_id: int) -> LeaseState:
    path = lease_path(job_id)
    try:
        age = time.time() - path.stat().st_mtime
        owner = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return LeaseState(exists=False)
    except (OSError, ValueError):
        owner = {}
    held = bool(owner.get("token"))
    return LeaseState(exists=True, held=held, age=max(0.0, age), owner_dead=held and _owner_gone(owner))


@dataclass
class Lease:
    job_id: int
    token: str

    @property
    def path(self) -> Path:
        return lease_path(self.job_id)

    def _mine(self) -> bool:
        try:
            return json.loads(self.path.read_text()).get("token") == self.token
        except (OSError, ValueError):
            return False

    def beat(self) -> bool:
        """Touch the heartbeat; False when the lease is no longer this one (it was taken over)."""
        if not self._mine():
            return False
        try:
            os.utime(self.path)
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self._mine():
            self.path.unlink(missing_ok=True)


def _owner() -> dict:
    return {"token": uuid.uuid4().hex, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}


def _write(path: Path, content: dict) -> None:
    """Replace the file at once (readers never see it half written); its mtime is now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(json.dumps(content))
    os.replace(temporary, path)


def lease_claim(job_id: int) -> Lease | None:
    """Take the lease of a job nobody holds alive: none, a queue mark, or a stale one. None if a live
    worker holds it or another process claimed it first."""
    path = lease_path(job_id)
    if lease_state(job_id).alive:
        return None
    try:
        os.rename(path, path.with_name(f"{path.name}.old-{uuid.uuid4().hex}"))
    except FileNotFoundError:
        pass
    else:
        for old in path.parent.glob(f"{path.name}.old-*"):
            old.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    written = path.with_name(f"{path.name}.{owner['token']}")
    written.write_text(json.dumps(owner))
    try:
        os.link(written, path)  # created only if absent, and never seen half written
    except FileExistsError:
        return None  # another process claimed it between our two steps
    finally:
        written.unlink(missing_ok=True)
    return Lease(job_id=job_id, token=owner["token"])


def lease_replace(job_id: int) -> Lease:
    """Take the lease whatever is there: for the one process the database has just made the job's owner."""
    owner = _owner()
    _write(lease_path(job_id), owner)
    return Lease(job_id=job_id, token=owner["token"])


def lease_mark_queued(job_id: int) -> None:
    """Mark the job as (put back) on the queue: no owner, and the mark's age is how long it has waited."""
    _write(lease_path(job_id), {"queued": time.time()})


def lease_remove(job_id: int) -> None:
    lease_path(job_id).unlink(missing_ok=True)
