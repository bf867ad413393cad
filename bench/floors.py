"""Each stage's floor: the same code the broker runs, alone in a loop in this process.

A floor is CPU time per call (``time.thread_time_ns``, or ``process_time_ns`` where a stage
has a thread of its own), measured in the same run as the load, on the same machine state.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey

__all__ = ["FloorInputs", "measure_floors"]

_BUDGET_NS = 250_000_000  # per stage: long enough for a stable mean, short enough to be cheap


@dataclass(frozen=True, slots=True)
class FloorInputs:
    """What the floors need from the running world."""

    data_dir: Path
    broker_key: OKPKey
    client_key: OKPKey
    client_id: str
    service_id: str
    broker_url: str
    backend_url: str
    consent_token: str
    consent_id: str
    nik: str


def _per_call(fn: Callable[[], object], *, clock: Callable[[], int] = time.thread_time_ns) -> float:
    """Mean CPU microseconds per call of ``fn``, after a short warm-up."""
    for _ in range(20):
        fn()
    calls = 0
    started = clock()
    while clock() - started < _BUDGET_NS:
        for _ in range(25):
            fn()
        calls += 25
    return (clock() - started) / calls / 1000


def _signature(inputs: FloorInputs, tmp: Path) -> float:
    from broker.db import create_db_engine
    from broker.keys import to_private_key
    from broker.replay import ReplayCache, install
    from broker.signatures import REQUEST_COMPONENTS, request_hash, sign_request, verify_request

    url = f"{inputs.broker_url}/r1/{inputs.service_id}"
    body = json.dumps({"nik": inputs.nik}).encode()
    private = to_private_key(inputs.client_key)
    public = private.public_key()
    signed = sign_request(
        method="POST",
        url=url,
        headers={
            "X-Road-Client": inputs.client_id,
            "X-Road-Id": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "Consent-Token": inputs.consent_token,
        },
        body=body,
        key=private,
        key_id=str(inputs.client_key.kid),
    )
    headers = list(signed.items())
    engine = create_db_engine(f"sqlite:///{tmp / 'replay.db'}")
    install(engine)
    replay = ReplayCache(engine=engine, window_seconds=900)

    def once() -> None:
        verify_request(
            method="POST",
            url=url,
            headers=headers,
            body=body,
            resolve_key=lambda _kid: public,
            required=REQUEST_COMPONENTS,
        )
        request_hash(method="POST", url=url, headers=headers, body=body)
        replay.remember(inputs.client_id, str(uuid.uuid4()))

    try:
        return _per_call(once)
    finally:
        engine.dispose()


def _consent(inputs: FloorInputs) -> float:
    from broker.db import create_db_engine
    from consent import ConsentStore, TokenIssuer, TokenVerifier

    public = OKPKey.import_key(inputs.broker_key.as_dict(private=False))
    verifier = TokenVerifier(keys=KeySet([public]), issuer="urn:simpul:broker")
    engine = create_db_engine(f"sqlite:///{inputs.data_dir / 'simpul.db'}")
    store = ConsentStore(
        engine=engine, issuer=TokenIssuer(key=inputs.broker_key, issuer="urn:simpul:broker")
    )

    def once() -> None:
        verifier.verify(inputs.consent_token)
        store.require_active(inputs.consent_id)

    try:
        return _per_call(once)
    finally:
        store.close()
        engine.dispose()


def _schema(record: dict[str, Any], nik: str) -> float:
    from schemas import default_schemas

    schemas = default_schemas()
    query = {"nik": nik}

    def once() -> None:
        schemas.validate_request("ktp", query)
        schemas.validate_response("ktp", record)

    return _per_call(once)


def _signing(inputs: FloorInputs, body: bytes) -> float:
    from broker.keys import to_private_key
    from broker.signatures import sign_response

    key = to_private_key(inputs.broker_key)

    def once() -> None:
        sign_response(
            status=200,
            headers={"Content-Type": "application/json", "X-Road-Id": str(uuid.uuid4())},
            body=body,
            request_hash="0" * 64,
            key=key,
            key_id=str(inputs.broker_key.kid),
        )

    return _per_call(once)


async def _adapter(inputs: FloorInputs) -> tuple[float, dict[str, Any]]:
    """Client-side CPU of one hop through the Dukcapil adapter (mapping included), at c=1."""
    from adapters import create_adapter

    adapter = create_adapter("dukcapil", base_url=inputs.backend_url, timeout=5.0)
    try:
        record = await adapter.fetch("ktp", {"nik": inputs.nik})
        for _ in range(50):
            await adapter.fetch("ktp", {"nik": inputs.nik})
        calls, started = 0, time.thread_time_ns()
        while time.thread_time_ns() - started < _BUDGET_NS:
            await adapter.fetch("ktp", {"nik": inputs.nik})
            calls += 1
        return (time.thread_time_ns() - started) / calls / 1000, record
    finally:
        await adapter.aclose()


async def _audit(tmp: Path, concurrency: int = 32, rounds: int = 40) -> float:
    """CPU (writer thread included) per appended record, ``concurrency`` appends at a time."""
    import audit
    from audit import AuditEntry, AuditLog
    from broker.db import create_db_engine

    engine = create_db_engine(f"sqlite:///{tmp / 'audit.db'}")
    audit.install(engine)
    log = AuditLog(engine)
    entry = AuditEntry(
        event="exchange",
        xroad_id=str(uuid.uuid4()),
        client="ID/GOV/DPMPTSP-DKI/perizinan",
        service="ID/GOV/DUKCAPIL/adminduk/ktp",
        officer=None,
        issue=None,
        purpose="perizinan-berusaha",
        consent_id=str(uuid.uuid4()),
        subject_ref="0" * 64,
        decision="allowed",
        reason=None,
        status=200,
        request_hash="0" * 64,
        response_hash="0" * 64,
        released_fields=("nama", "alamat"),
        latency_us=1000,
    )
    await log.start()
    try:
        for _ in range(3):
            await asyncio.gather(*(log.append(entry) for _ in range(concurrency)))
        started = time.process_time_ns()
        for _ in range(rounds):
            await asyncio.gather(*(log.append(entry) for _ in range(concurrency)))
        return (time.process_time_ns() - started) / (rounds * concurrency) / 1000
    finally:
        await log.stop()
        engine.dispose()


def measure_floors(inputs: FloorInputs, tmp: Path) -> dict[str, float]:
    """Microseconds of CPU per call for every stage the broker times (``serve`` aside)."""
    from broker.registry import load_registry
    from schemas import SCHEMA_CODES

    tmp.mkdir(parents=True, exist_ok=True)
    adapter_us, record = asyncio.run(_adapter(inputs))
    registry = load_registry(
        inputs.data_dir / "registry.toml",
        schema_codes=SCHEMA_CODES,
        adapter_names=("dukcapil", "capil"),
    )
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    return {
        "signature": _signature(inputs, tmp),
        "access": _per_call(lambda: registry.require_access(inputs.client_id, inputs.service_id)),
        "consent": _consent(inputs),
        "schema": _schema(record, inputs.nik),
        "adapter": adapter_us,
        "signing": _signing(inputs, body),
        "audit": asyncio.run(_audit(tmp)),
    }
