"""The sandbox world as the benchmark runs it: N broker workers, stage timings switched on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import psutil  # type: ignore[import-untyped]

from broker.client import SimpulClient
from broker.sandbox_env import KTP, PERMIT_OFFICE, SandboxWorld

__all__ = ["BenchWorld", "Consent", "ProcessGroup", "Resident", "obtain_consent"]

PURPOSE = {"code": "perizinan-berusaha", "text": "Verifikasi identitas pemohon (benchmark)"}


@dataclass
class BenchWorld(SandboxWorld):
    """A :class:`SandboxWorld` whose broker runs ``workers`` processes and times its stages."""

    workers: int = 1
    pin_workers: bool = False  # one worker per CPU (``simpul serve --pin-workers``)

    def broker_env(self) -> dict[str, str]:
        """The sandbox environment plus workers, their placement and the stage-timings
        directory."""
        return {
            **super().broker_env(),
            "SIMPUL_WORKERS": str(self.workers),
            "SIMPUL_PIN_WORKERS": "true" if self.pin_workers else "false",
            "SIMPUL_STAGE_TIMINGS_DIR": str(self.data_dir / "stages"),
        }

    def pid(self, name: str) -> int:
        """The process id of ``broker``, ``dukcapil`` or ``capil``."""
        return next(proc.pid for n, proc, _ in self._procs if n == name)


class Resident(NamedTuple):
    """A process group's resident memory, in bytes (see :meth:`ProcessGroup.memory_bytes`).

    ``file`` is the part of ``rss`` mapped from files (libraries, mostly): how much of a
    library counts depends on the state in which the page cache holds it (docs/performance.md).
    """

    rss: int
    pss: int | None
    file: int | None


class ProcessGroup:
    """A process and all its descendants (uvicorn's workers), read through psutil."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)

    def _members(self) -> list[psutil.Process]:
        return [self._root, *self._root.children(recursive=True)]

    def pids(self) -> set[int]:
        """The process ids of every member now."""
        try:
            return {proc.pid for proc in self._members()}
        except psutil.NoSuchProcess:
            return set()

    def cpu_seconds(self) -> float:
        """User plus system CPU of every member so far."""
        total = 0.0
        for proc in self._members():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def memory_bytes(self, *, pss: bool = True) -> Resident:
        """Resident memory of every member now, summed: RSS, PSS where the system has it, and
        the part of RSS mapped from files where the system says.

        Summed RSS counts a page shared by several members (libraries, the interpreter) once
        per member. PSS divides each shared page among the processes sharing it, so its sum is
        the group's share of the machine's memory (pages shared with processes outside the
        group, such as the backends, are divided with those too). psutil reads it from
        ``/proc/<pid>/smaps_rollup`` (Linux), which costs more than RSS: ``pss=False`` skips it.
        """
        rss_total, pss_total, file_total = 0, 0, 0
        has_pss, has_file = pss, True
        for proc in self._members():
            try:
                info = None
                if has_pss:
                    try:
                        info = proc.memory_full_info()
                    except psutil.AccessDenied:
                        info = None
                    pss = getattr(info, "pss", None)  # Linux only
                    if info is not None and pss is not None:
                        pss_total += pss
                    else:
                        has_pss, info = False, None  # not Linux, or not readable: no PSS
                info = info or proc.memory_info()
            except psutil.NoSuchProcess:
                continue
            rss_total += info.rss
            shared = getattr(info, "shared", None)  # Linux: RssFile + RssShmem
            has_file = has_file and shared is not None
            file_total += shared or 0
        return Resident(
            rss=rss_total,
            pss=pss_total if has_pss else None,
            file=file_total if has_file else None,
        )


@dataclass(frozen=True, slots=True)
class Consent:
    """An approved consent as the consumer holds it."""

    consent_id: str
    token: str


def obtain_consent(world: SandboxWorld, nik: str, fields: tuple[str, ...]) -> Consent:
    """Ask, approve as the citizen and collect the token, all through the real API."""
    with SimpulClient(
        base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.permit_key
    ) as office:
        created = office.request_consent(
            subject_nik=nik,
            grants=[{"service": KTP, "fields": list(fields)}],
            purpose=PURPOSE,
            procedure_ref=f"BENCH/{uuid.uuid4().hex[:8]}",
        )
        me = {"Authorization": f"Bearer {world.citizen_token(nik)}"}
        approved = httpx.post(
            f"{world.broker_url}/v1/me/consent-requests/{created['id']}/approve", headers=me
        )
        if approved.status_code != 200:
            raise RuntimeError(f"approving the benchmark consent failed: {approved.text}")
        polled: dict[str, Any] = office.consent_request(created["id"])
    return Consent(consent_id=polled["consent_id"], token=polled["consent_token"])
