"""The exchange pipeline: design.md's nine steps for ``POST /r1/{service id}``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from audit import AuditEntry, AuditLog, subject_ref
from audit.errors import AuditUnavailable
from audit.subjects import body_ref, body_ref_key
from broker._trail import (
    CO_SUBJECT_EVENT,
    MAX_RECORD_PEOPLE,
    Trail,
    co_subject_refs,
    request_hash_or_none,
    short,
    storable,
)
from broker.auth import Caller, RequestAuthenticator, claimed_headers, header
from broker.context import Adapters
from broker.errors import BadRequest
from broker.logs import get_logger
from broker.problems import InternalError, Problem, problem_body
from broker.registry import Registry, Service
from broker.signatures import request_components, sign_response
from broker.stages import StageClock
from consent import (
    ConsentClaims,
    ConsentStore,
    TokenVerifier,
    check_exchange,
    check_may_consent,
)
from consent.models import Consent
from consent.people import record_people
from schemas import SchemaSet

__all__ = [
    "CO_SUBJECT_EVENT",
    "MAX_RECORD_PEOPLE",
    "ExchangeRequest",
    "ExchangeResponse",
    "ExchangeService",
    "co_subject_refs",
]

#: What steps 2-4 establish: the service, the query, the claims, the fields to release, and
#: the consent as the store holds it.
_Checked = tuple[Service, dict[str, Any], ConsentClaims, tuple[str, ...], Consent]

_log = get_logger("simpul.exchange")

_JSON = "application/json"
_PROBLEM = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """An incoming exchange as the HTTP layer saw it."""

    service_id: str
    method: str
    url: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class ExchangeResponse:
    """What goes back on the wire: status, headers (signed) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class ExchangeService:
    """Runs one exchange end to end; every outcome, refusals included, is audited."""

    def __init__(
        self,
        *,
        registry: Registry,
        authenticator: RequestAuthenticator,
        schemas: SchemaSet,
        adapters: Adapters,
        tokens: TokenVerifier,
        consents: ConsentStore,
        audit: AuditLog,
        subject_secret: bytes,
        signing_key: Any,
        signing_kid: str,
        stages: StageClock | None = None,
    ) -> None:
        self._registry = registry
        self._auth = authenticator
        self._schemas = schemas
        self._adapters = adapters
        self._tokens = tokens
        self._consents = consents
        self._audit = audit
        self._subject_secret = subject_secret
        self._body_ref_key = body_ref_key(subject_secret)
        self._key = signing_key
        self._kid = signing_kid
        self._stages = stages or StageClock()
        # Exchanges in this process between entry and answer. One alone has nothing to
        # overlap its commits with, so the replay cache and the audit writer may make them on
        # the loop's thread rather than wake a worker thread (see ReplayCache, AuditLog).
        self._in_flight = 0

    async def handle(self, request: ExchangeRequest) -> ExchangeResponse:
        """Run the pipeline and return the signed answer or the signed refusal."""
        self._in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self._in_flight -= 1

    async def _handle(self, request: ExchangeRequest) -> ExchangeResponse:
        started = time.perf_counter()
        client, xroad_id = claimed_headers(request.headers)
        trail = Trail(
            xroad_id=xroad_id,
            client=client,
            service=storable(request.service_id)[:255],
            officer=short(header(request.headers, "x-road-userid")),
            issue=short(header(request.headers, "x-road-issue")),
            timed=self._stages.sample(),
        )
        problem: Problem | None = None
        body: bytes
        try:
            body = await self._run(request, trail)
            status = 200
        except Exception as exc:  # noqa: BLE001 - every failure becomes an audited refusal
            problem = exc if isinstance(exc, Problem) else InternalError()
            if problem is not exc:
                _log.exception("exchange_failed", xroad_id=xroad_id)
            else:
                _log.info("exchange_refused", xroad_id=xroad_id, reason=problem.problem_type)
            status = problem.status
            body = problem_body(problem, instance=xroad_id or None)
            trail.released = ()
        # A verified signature already gave the hash; only a refused request computes it here.
        req_hash = trail.request_hash or request_hash_or_none(request)

        entry = AuditEntry(
            event="exchange",
            xroad_id=trail.xroad_id,
            client=trail.client,
            service=trail.service,
            officer=trail.officer,
            issue=trail.issue,
            purpose=trail.purpose,
            consent_id=trail.consent_id,
            subject_ref=trail.subject_ref,
            decision="refused" if problem else "allowed",
            reason=problem.problem_type if problem else None,
            status=status,
            request_hash=req_hash,
            # Keyed: a minimised answer can be small enough to guess from a plain hash.
            response_hash=body_ref(body, self._body_ref_key),
            released_fields=trail.released,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
        )
        mark = self._stages.start(trail.timed)
        alone = self._in_flight == 1
        try:
            if trail.co_subject_refs:
                others = [
                    replace(entry, event=CO_SUBJECT_EVENT, subject_ref=ref)
                    for ref in trail.co_subject_refs
                ]
                stamp = (await self._audit.commit_all([entry, *others], alone=alone))[0]
            else:
                stamp = await self._audit.commit(entry, alone=alone)
        except AuditUnavailable as exc:
            # Fail closed: without a durable record nothing is released, not even a refusal.
            _log.error("audit_unavailable", xroad_id=xroad_id)
            body = problem_body(exc, instance=xroad_id or None)
            return self._signed(
                exc.status, body, xroad_id, req_hash, seq=None, problem_type=exc.problem_type
            )
        mark = self._stages.lap("audit", mark)
        signed = self._signed(
            status,
            body,
            xroad_id,
            req_hash,
            seq=stamp.seq,
            problem_type=problem.problem_type if problem else None,
        )
        self._stages.lap("signing", mark)
        self._stages.done(trail.timed)
        return signed

    def _signed(
        self,
        status: int,
        body: bytes,
        xroad_id: str,
        req_hash: str | None,
        *,
        seq: int | None,
        problem_type: str | None,
    ) -> ExchangeResponse:
        """Sign the answer; a refusal (``problem_type``) goes out as problem+json."""
        headers = {"Content-Type": _PROBLEM if problem_type else _JSON, "X-Road-Id": xroad_id}
        if seq is not None:
            headers["X-Simpul-Audit-Seq"] = str(seq)
        if problem_type:
            headers["X-Road-Error"] = problem_type
        signed = sign_response(
            status=status,
            headers=headers,
            body=body,
            request_hash=req_hash,
            key=self._key,
            key_id=self._kid,
        )
        return ExchangeResponse(status=status, headers=signed, body=body)

    def _check(
        self, request: ExchangeRequest, trail: Trail, caller: Caller, mark: int
    ) -> tuple[_Checked, int]:
        """Steps 2-4: access right, consent token, request schema, consent policy, live status.

        Returns what they establish and a new stage-clock mark.
        """
        query = _json_object(request.body)
        # The body is signed, so the person it names can find this attempt in their access
        # log even when it is refused below.
        plausible_nik = query.get("nik")
        if isinstance(plausible_nik, str) and len(plausible_nik) == 16 and plausible_nik.isdigit():
            trail.subject_ref = subject_ref(plausible_nik, self._subject_secret)

        # 2. Access rights, deny by default.
        service = self._registry.service(request.service_id)
        self._registry.require_access(caller.client_id, service.id)
        mark = self._stages.lap("access", mark)

        # 3. Consent: the token itself, then its live status in the store.
        claims = self._tokens.verify(header(request.headers, "consent-token"))
        trail.consent_id = claims.jti
        trail.purpose = claims.purpose.code
        if trail.subject_ref is None:
            # The body names no one: the record is about the consent's subject. Where it
            # names someone else, the attempt stays theirs (refused below as the wrong subject).
            trail.subject_ref = subject_ref(claims.sub, self._subject_secret)
        mark = self._stages.lap("consent", mark)

        # 4. The request against the service's schema (before its fields are trusted).
        self._schemas.validate_request(service.schema, query)
        mark = self._stages.lap("schema", mark)
        requested = query.get("fields")
        released = check_exchange(
            claims,
            client_id=caller.client_id,
            client_jkt=caller.jkt,
            service_id=service.id,
            subject_nik=query.get("nik") if isinstance(query.get("nik"), str) else None,
            fields=requested if isinstance(requested, list) else None,
            purpose_code=header(request.headers, "x-road-purpose"),
        )
        # The purpose must still be catalogued for this client (the registry may have changed).
        self._registry.require_purpose(caller.client_id, claims.purpose.code)
        # Live: a revoked, paused, expired or spent consent stops this very request.
        consent = self._consents.require_active(claims.jti, service=service.id)
        mark = self._stages.lap("consent", mark)
        return (service, query, claims, released, consent), mark

    async def _run(self, request: ExchangeRequest, trail: Trail) -> bytes:
        # 1. Who is calling, with a registered key, never twice.
        # Without a Consent-Token header there is nothing to cover; the consent step then
        # refuses with consent-missing rather than a confusing signature error. The officer,
        # case number and purpose headers must be covered whenever they are sent.
        has_token = header(request.headers, "consent-token") is not None
        mark = self._stages.start(trail.timed)
        caller = self._auth.verify(
            method=request.method,
            url=request.url,
            headers=request.headers,
            body=request.body,
            components=request_components(request.headers, consent=has_token),
        )
        trail.client = caller.client_id
        trail.xroad_id = caller.xroad_id  # canonical (lower-case) form, as the replay cache has it
        trail.request_hash = caller.request_hash
        # Never twice: the X-Road-Id is recorded durably (a commit on another thread) while the
        # checks of steps 2-4 run, none of which has an effect; the backend is not called
        # before the id is known to be new, and a replay is refused as a replay whatever the
        # checks found. (An exchange alone may have it committed here and now instead, and
        # made durable on another thread while the steps after go on.)
        recording = self._auth.remember_soon(caller, alone=self._in_flight == 1)
        mark = self._stages.lap("signature", mark)  # with the replay commit, if made here
        try:
            return await self._recorded(request, trail, caller, recording, mark)
        finally:
            # Never answered twice, even after a power loss: the id is durable before any
            # answer, a refusal's too (usually it already is: see ReplayCache.durable).
            await self._auth.durable()

    async def _recorded(
        self,
        request: ExchangeRequest,
        trail: Trail,
        caller: Caller,
        recording: asyncio.Future[bool],
        mark: int,
    ) -> bytes:
        """Steps 2-7, once the request's id is being recorded: the answer's body."""
        try:
            checked, mark = self._check(request, trail, caller, mark)
        except BaseException:
            await self._auth.remembered(caller, recording)  # a Replay takes precedence
            raise
        await self._auth.remembered(caller, recording)
        mark = self._stages.lap("signature", mark)  # with the replay commit, as it awaits
        service, query, claims, released, consent = checked

        # 5. The owning agency's backend, through its adapter.
        lookup = {k: v for k, v in query.items() if k != "fields"}
        record = await self._adapters.for_service(service).fetch(service.schema, lookup)
        mark = self._stages.lap("adapter", mark)

        # 6. Never pass on an answer that breaks the contract.
        self._schemas.validate_response(service.schema, record)
        mark = self._stages.lap("schema", mark)
        # Whoever else the record names finds the exchange in their access log too, whether it
        # is released or refused below: the broker has read their data from its owner.
        # UTC's date: nobody comes of age before their birthday anywhere in Indonesia.
        people = record_people(service.schema, record, today=datetime.now(UTC).date())
        trail.co_subject_refs = co_subject_refs(
            people.subjects, filed_under=trail.subject_ref, secret=self._subject_secret
        )
        check_may_consent(claims, people)
        if consent.counted:
            # Counted only once the answer is good, atomically: two requests racing for the
            # last use cannot both win.
            self._consents.record_use(claims.jti, service=service.id)
        else:
            # Live again after the backend answered: a revoke, pause or expiry that landed
            # while the backend was working still stops the release.
            self._consents.require_active(claims.jti, service=service.id)

        # 7. Release only what the consent grants (and the consumer asked for).
        minimised = {name: record[name] for name in released if name in record}
        trail.released = tuple(minimised)
        body = _compact_json(minimised)
        self._stages.lap("consent", mark)  # subject check, use count, minimisation
        return body


def _compact_json(record: dict[str, Any]) -> bytes:
    """``record`` as compact UTF-8 JSON. orjson writes a schema-valid record (strings,
    integers, null, objects, arrays) byte for byte as ``json.dumps(ensure_ascii=False)``
    does, but refuses integers past 64 bits, which a schema without a maximum lets through."""
    try:
        return orjson.dumps(record)
    except TypeError:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        # UTF-8 only (RFC 8259 section 8.1): json.loads would take UTF-16 and UTF-32 too, and
        # the surrogate check below reads the bytes. ValueError: JSONDecodeError,
        # UnicodeDecodeError, and an integer past Python's limit on the digits it converts
        # (4,300), which is neither.
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BadRequest("the body is not valid JSON (or nests too deeply)") from exc
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    if b"\\u" in body:
        # A \u escape may write half of a surrogate pair alone: valid JSON, but no Unicode
        # text, which nothing downstream (a backend's query, the audit log) could encode.
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise BadRequest("the body holds a lone surrogate (\\u escape): not Unicode") from exc
    return value
