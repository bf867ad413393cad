"""Run the whole benchmark: world up, floors, a direct then a broker phase per concurrency."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil  # type: ignore[import-untyped]

from adapters.sandbox import generate
from adapters.sandbox.dukcapil import CALL_NIK_PATH
from bench._world import BenchWorld, ProcessGroup, obtain_consent
from bench.floors import FloorInputs, measure_floors
from bench.report import WRITER_THREADS
from broker._supervise import can_pin
from broker.keys import load_private_jwk
from broker.sandbox_env import KTP, PERMIT_OFFICE
from schemas import response_fields

__all__ = ["BenchConfig", "run"]

STAGES = ("signature", "access", "consent", "schema", "adapter", "signing", "audit")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to run."""

    data_dir: Path
    output: Path
    concurrencies: tuple[int, ...] = (1, 8, 32, 64)
    duration: float = 5.0
    warmup: float = 1.0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: ``simpul serve --pin-workers`` where the platform can (Linux): see docs/performance.md.
    pin_workers: bool = True
    rounds: int = 1  # direct-then-broker window pairs per concurrency


class _Progress:
    """One status line, rewritten in place on a terminal, printed per phase otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._label = ""
        self._since = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def phase(self, label: str) -> None:
        self._label, self._since = label, time.monotonic()
        if not self._tty:
            self._stream.write(f"[bench] {label}\n")
            self._stream.flush()
        elif self._thread is None:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            elapsed = time.monotonic() - self._since
            self._stream.write(f"\r\x1b[K[bench] {self._label} … {elapsed:4.1f} s")
            self._stream.flush()

    def close(self) -> None:
        self._stop.set()
        if self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


class _RssPeak:
    """Samples a process group's summed RSS every 100 ms, and PSS every second (it costs the
    kernel more, on the cores the benchmark measures), and keeps the peaks, with the part of
    the RSS peak that was mapped from files."""

    def __init__(self, group: ProcessGroup) -> None:
        self._group = group
        self.peak = 0
        self.peak_file: int | None = None  # the file-mapped part of RSS at its peak
        self.peak_pss: int | None = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.1):
            with_pss = tick % 10 == 0 and self.peak_pss is not None
            rss, pss, file = self._group.memory_bytes(pss=with_pss)
            if rss > self.peak:
                self.peak, self.peak_file = rss, file
            if with_pss:
                self.peak_pss = None if pss is None else max(self.peak_pss or 0, pss)
            tick += 1


def _stage_totals(directory: Path) -> tuple[int, dict[str, int]]:
    exchanges, totals = 0, dict.fromkeys(STAGES, 0)
    for path in directory.glob("stages-*.json"):
        data = json.loads(path.read_text())
        exchanges += data["exchanges"]
        for name, ns in data["cpu_ns"].items():
            totals[name] = totals.get(name, 0) + ns
    return exchanges, totals


#: A writer's thread in a worker: (process id, the system's thread id).
_ThreadKey = tuple[int, int]


def _writer_threads(directory: Path, pids: set[int]) -> dict[_ThreadKey, tuple[str, float]]:
    """The writers' own threads in the workers ``pids``: the report's label and CPU seconds so
    far of each, by process and thread id.

    Each worker names its threads by system id in its stage totals (see
    :mod:`broker.stages`), and the system gives each thread's CPU. A stage file of a process
    not among ``pids`` (a run before, in a ``--data-dir`` used again) is passed over. Only on
    Linux, where psutil's thread ids are the system's: elsewhere, none.
    """
    found: dict[_ThreadKey, tuple[str, float]] = {}
    if not sys.platform.startswith("linux"):
        return found
    for path in directory.glob("stages-*.json"):
        data = json.loads(path.read_text())
        pid, names = data["pid"], data.get("threads", {})
        if pid not in pids:
            continue
        try:
            threads = psutil.Process(pid).threads()
        except psutil.Error:
            continue
        for thread in threads:
            name = names.get(str(thread.id), "")
            for prefix, label in WRITER_THREADS.items():
                if name.startswith(prefix):
                    found[pid, thread.id] = (label, thread.user_time + thread.system_time)
    return found


def _writer_threads_us(
    before: dict[_ThreadKey, tuple[str, float]],
    after: dict[_ThreadKey, tuple[str, float]],
    requests: int,
) -> dict[str, float]:
    """CPU µs per request of the writers' threads between two readings, by label: each thread
    there at the end, from zero if it was not there at the start. A label no thread had is
    left out (the report prints a dash), not given as zero."""
    per_label: dict[str, float] = {}
    for key, (label, seconds) in after.items():
        start = before.get(key, (label, 0.0))[1]
        per_label[label] = per_label.get(label, 0.0) + seconds - start
    return {label: seconds / requests * 1e6 for label, seconds in per_label.items()}


def _drive(
    spec: dict[str, Any],
    group: ProcessGroup,
    progress: _Progress,
    label: str,
    stages_dir: Path | None,
    note: str = "",
) -> list[dict[str, Any]]:
    """Run the load generator on ``spec``; read ``group``'s CPU at each window's edges."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    generator = ProcessGroup(proc.pid)
    results: list[dict[str, Any]] = []
    cpu0, own0, stages0 = 0.0, 0.0, (0, dict.fromkeys(STAGES, 0))
    threads0: dict[_ThreadKey, tuple[str, float]] = {}
    rss: _RssPeak | None = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "start":
            progress.phase(f"{label} c={event['concurrency']}{note}")
            if stages_dir is not None:
                stages0 = _stage_totals(stages_dir)
                threads0 = _writer_threads(stages_dir, group.pids())
            cpu0, own0 = group.cpu_seconds(), generator.cpu_seconds()
            rss = _RssPeak(group).__enter__()
            continue
        cpu = group.cpu_seconds() - cpu0
        own = generator.cpu_seconds() - own0
        threads = _writer_threads(stages_dir, group.pids()) if stages_dir is not None else {}
        assert rss is not None
        rss.__exit__()
        result = {**event, "cpu_s": cpu, "peak_rss_mb": rss.peak / 2**20}
        if rss.peak_pss:
            result["peak_pss_mb"] = rss.peak_pss / 2**20
        if rss.peak_file is not None:
            result["peak_rss_file_mb"] = rss.peak_file / 2**20
        requests = event["requests"]
        result["cpu_us_per_request"] = cpu / requests * 1e6 if requests else 0
        # The load generator's own CPU: it shares the machine with what it measures.
        result["loadgen_cpu_us_per_request"] = own / requests * 1e6 if requests else 0
        if threads and requests:
            result["thread_us"] = _writer_threads_us(threads0, threads, requests)
        if stages_dir is not None:
            time.sleep(0.6)  # the workers write their totals four times a second
            count1, totals1 = _stage_totals(stages_dir)
            count = count1 - stages0[0]
            result["stage_us"] = {
                name: (totals1.get(name, 0) - stages0[1].get(name, 0)) / count / 1000
                for name in totals1
                if count
            }
        results.append(result)
    if proc.wait() != 0:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    return results


def _machine() -> dict[str, Any]:
    freq = psutil.cpu_freq()
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(config: BenchConfig) -> dict[str, Any]:
    """Run every phase and return the results (also written to ``config.output``)."""
    progress = _Progress()
    world = BenchWorld.create(config.data_dir)
    assert isinstance(world, BenchWorld)
    world.workers = config.workers
    world.pin_workers = config.pin_workers and config.workers > 1 and can_pin()
    placement = ", pinned to CPUs" if world.pin_workers else ""
    progress.phase(f"starting backends and broker ({config.workers} workers{placement})")
    world.start(timeout=60)
    try:
        population = generate()
        nik = next(p.nik for p in population.people if p.nik not in population.faults)
        fields = response_fields("ktp")
        consent = obtain_consent(world, nik, fields)
        backend = f"http://127.0.0.1:{world.dukcapil_port}"
        progress.phase("stage floors")
        floors = measure_floors(
            FloorInputs(
                data_dir=world.data_dir,
                broker_key=load_private_jwk(world.data_dir / "broker-key.jwk"),
                client_key=world.permit_key,
                client_id=PERMIT_OFFICE,
                service_id=KTP,
                broker_url=world.broker_url,
                backend_url=backend,
                consent_token=consent.token,
                consent_id=consent.consent_id,
                nik=nik,
            ),
            config.data_dir / "floors",
        )
        common = {
            "concurrencies": list(config.concurrencies),
            "duration": config.duration,
            "warmup": config.warmup,
        }
        # Direct, then brokered, at each concurrency in turn: a ratio compares two windows
        # seconds apart, not minutes, on a machine whose speed drifts. With several rounds,
        # each pair is run that many times (the report takes the median round).
        direct_spec = {"url": backend + CALL_NIK_PATH, "body": json.dumps({"NIK": nik})}
        broker_spec = {
            "url": f"{world.broker_url}/r1/{KTP}",
            "body": json.dumps({"nik": nik}),
            "presign_per_second": 2500,  # for the warm-up; its pace sizes the window's pool
            "sign": {
                "key_file": str(world.data_dir / "keys" / "dpmptsp-dki.jwk"),
                "client_id": PERMIT_OFFICE,
                "consent_token": consent.token,
            },
        }
        direct: list[dict[str, Any]] = []
        brokered: list[dict[str, Any]] = []
        for concurrency in config.concurrencies:
            phase = {**common, "concurrencies": [concurrency]}
            for round_ in range(config.rounds):
                note = f" (round {round_ + 1} of {config.rounds})" if config.rounds > 1 else ""
                for row in _drive(
                    {**phase, **direct_spec},
                    ProcessGroup(world.pid("dukcapil")),
                    progress,
                    "direct",
                    None,
                    note,
                ):
                    direct.append({**row, "round": round_})
                for row in _drive(
                    {**phase, **broker_spec},
                    ProcessGroup(world.pid("broker")),
                    progress,
                    "broker",
                    world.data_dir / "stages",
                    note,
                ):
                    brokered.append({**row, "round": round_})
    finally:
        progress.close()
        world.stop()
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "config": {
            **common,
            "workers": config.workers,
            "pinned": world.pin_workers,
            "rounds": config.rounds,
            "audit": "sqlite (durable)",
        },
        "floors_us": floors,
        "direct": direct,
        "broker": brokered,
    }
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(results, indent=2))
    return results
