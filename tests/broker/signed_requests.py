"""Signed requests for the differential tests of the request verifier, and ways to break them.

``requests()`` signs requests the way clients do; each mutation changes one in a way a careless
or hostile client could; ``resign`` signs the result again, as a client holding a registered
key can sign anything.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume
from hypothesis import strategies as st

from broker.errors import UnknownClient
from broker.signatures import (
    REQUEST_COMPONENTS,
    REQUEST_TAG,
    request_components,
    sign_request,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
EC_KEY = ec.generate_private_key(ec.SECP256R1()).public_key()
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8000/r1/ID/GOV/DUKCAPIL/adminduk/ktp"


def resolve(kid: str) -> Any:
    """The registry's answer for a key id: a key, None, another key type, or an error."""
    if kid == "boom":
        raise UnknownClient("client is not registered")
    return {
        "perizinan-1": KEY.public_key(),
        "k_Z-9.x:/+=": KEY.public_key(),
        "other-1": OTHER.public_key(),
        "ec-1": EC_KEY,
    }.get(kid)


@dataclass(frozen=True)
class Req:
    """A request as the server sees it."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> str:
        return next((v for n, v in self.headers if n.lower() == name), "")

    def set(self, name: str, value: str) -> Req:
        headers = [(n, value if n.lower() == name else v) for n, v in self.headers]
        return replace(self, headers=headers)


# --- valid requests ---------------------------------------------------------------------

_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
_OPTIONAL = ("X-Road-UserId", "X-Road-Issue", "X-Road-Purpose")
_ANY = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x17F), max_size=12),
    st.sampled_from(["a\tb", "a\x7fb", "caf\u00e9", "a\x01", "x, y", ""]),
)
_URLS = st.sampled_from(
    [
        URL,
        "https://Broker.Example/r1/ID/GOV/DUKCAPIL/adminduk/kk?a=1&b=c",
        "http://broker.test/r1/x?",
        "http://h:80/r1/a@b/c",
        "http://u:p@h/r1/x",
        "http://h/r1/x#frag",
        "http://h/r1/%41x",
        "http://[::1]:8000/r1/x",
        "HTTP://h/r1/x",
        "http://h",
    ]
)


def _mostly(good: Any, others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about half the time: most requests should reach the direct path's last step."""
    return st.one_of(st.just(good), others)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Req, tuple[str, ...]]:
    """A request signed as a client signs it, and the components the server requires."""
    headers = {
        "X-Road-Client": draw(_mostly("ID/GOV/DPMPTSP-DKI/perizinan", st.just("a b"))),
        "X-Road-Id": draw(st.one_of(st.uuids().map(str), _ASCII)),
        "Content-Type": "application/json",
        "Consent-Token": draw(_mostly("eyJ.eyJ.c2ln", _ASCII)),
    }
    # The officer, case number and purpose headers, when sent, are required to be covered.
    for name in draw(st.lists(st.sampled_from(_OPTIONAL), unique=True, max_size=3)):
        headers[name] = draw(_mostly("petugas-7", _ASCII))
    required = request_components(headers, consent=draw(st.booleans()))
    url = draw(_mostly(URL, _URLS))
    body = draw(st.binary(max_size=64))
    kids = st.sampled_from(["k_Z-9.x:/+=", "other-1", "nobody", "ec-1", "boom"])
    try:
        signed = sign_request(
            method="POST",
            url=url,
            headers=headers,
            body=body,
            key=KEY,
            key_id=draw(_mostly("perizinan-1", kids)),
            components=draw(_mostly(required, st.just(REQUEST_COMPONENTS))),
            created=NOW + timedelta(seconds=draw(_mostly(0, st.integers(-400, 400)))),
        )
    except ValueError:  # a URL the library will not sign
        assume(False)
        raise
    # Servers hand over lower-case names (ASGI); other callers may not.
    pairs = [(n.lower() if draw(st.booleans()) else n, v) for n, v in signed.items()]
    return Req("POST", url, pairs, body), required


def _base(req: Req) -> bytes | None:
    """The signature base as RFC 9421 builds it, for a holder of the key to sign anything."""
    found = re.fullmatch(r'sig1=\(((?:"[^"]*" ?)*)\)(.*)', req.get("signature-input"))
    if found is None:
        return None
    lines = []
    for component in re.findall(r'"([^"]*)"', found[1]):
        if component in ("@method", "@target-uri"):
            value = req.method if component == "@method" else req.url
        else:
            values = [v.strip(" \t") for n, v in req.headers if n.lower() == component]
            value = ", ".join(values)
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {req.get("signature-input")[5:]}')
    return "\n".join(lines).encode("utf-8")


def resign(req: Req) -> Req:
    base = _base(req)
    if base is None:
        return req
    return req.set("signature", f"sig1=:{base64.b64encode(KEY.sign(base)).decode()}:")


# --- mutations: each takes (draw, request) and returns the changed request ---------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
Mutation = Callable[[st.DrawFn, Req], Req]


def _flip(data: bytes, index: int, bit: int) -> bytes:
    if not data:
        return b"\x00"
    index %= len(data)
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


def _name(draw: st.DrawFn, req: Req) -> str:
    return draw(st.sampled_from([n for n, _ in req.headers]))


def _set_value(draw: st.DrawFn, req: Req) -> Req:
    return req.set(_name(draw, req).lower(), draw(_ANY))


def _repeat(draw: st.DrawFn, req: Req) -> Req:
    name = _name(draw, req)
    value = draw(st.one_of(st.just(req.get(name.lower())), _ASCII))
    return replace(
        req, headers=[*req.headers, (draw(st.sampled_from([name, name.upper()])), value)]
    )


def _drop(draw: st.DrawFn, req: Req) -> Req:
    name = _name(draw, req)
    return replace(req, headers=[(n, v) for n, v in req.headers if n != name])


def _rename(draw: st.DrawFn, req: Req) -> Req:
    name = _name(draw, req)
    other = draw(st.sampled_from([name.upper(), name.title(), name.replace("k", "\u212a")]))
    return replace(req, headers=[(other if n == name else n, v) for n, v in req.headers])


def _whitespace(draw: st.DrawFn, req: Req) -> Req:
    name = _name(draw, req).lower()
    pad = draw(st.sampled_from([" ", "\t", " \t ", "\r\n ", "\n", "\r"]))
    value = req.get(name)
    at = draw(st.integers(0, len(value)))
    return req.set(name, value[:at] + pad + value[at:])


def _reorder(draw: st.DrawFn, req: Req) -> Req:
    found = re.fullmatch(r"sig1=\(([^)]*)\)(.*)", req.get("signature-input"))
    if found is None:
        return req
    order = draw(st.permutations(found[1].split(" ")))
    return req.set("signature-input", f"sig1=({' '.join(order)}){found[2]}")


def _component_list(draw: st.DrawFn, req: Req) -> Req:
    found = re.fullmatch(r"sig1=\(([^)]*)\)(.*)", req.get("signature-input"))
    if found is None:
        return req
    items = found[1].split(" ")
    extra = draw(st.sampled_from([*items, '"@authority"', '"x-road-userid"', '"@query"', '"A"']))
    at = draw(st.integers(0, len(items)))
    changed = draw(
        st.sampled_from([[*items[:at], extra, *items[at:]], items[:at] + items[at + 1 :]])
    )
    return req.set("signature-input", f"sig1=({' '.join(changed)}){found[2]}")


def _respell(old: str, choices: list[str], header: str = "signature-input") -> Mutation:
    def mutate(draw: st.DrawFn, req: Req) -> Req:
        return req.set(header, req.get(header).replace(old, draw(st.sampled_from(choices)), 1))

    return mutate


def _created(draw: st.DrawFn, req: Req) -> Req:
    sig_input = req.get("signature-input")
    found = re.search(r"created=([0-9]+)", sig_input)
    if found is None:  # an earlier mutation respelled it already
        return req
    n = int(found[1])
    spelled = draw(st.sampled_from([f"0{n}", f"{n}.0", f"-{n}", str(n + 301), f'"{n}"', "9" * 16]))
    return req.set("signature-input", sig_input.replace(found[0], f"created={spelled}"))


def _keyid(draw: st.DrawFn, req: Req) -> Req:
    sig_input = req.get("signature-input")
    new = draw(st.sampled_from(['"boom"', '"ec-1"', '"other-1"', "perizinan-1", '"pe\\"r"']))
    return req.set("signature-input", re.sub(r'keyid="[^"]*"', f"keyid={new}", sig_input))


def _b64(req: Req) -> str | None:
    found = re.fullmatch(r"sig1=:([A-Za-z0-9+/]{86})==:", req.get("signature"))
    return found[1] if found else None


def _flip_signature(draw: st.DrawFn, req: Req) -> Req:
    b64 = _b64(req)
    if b64 is None:
        return req
    raw = base64.b64decode(b64 + "==")
    flipped = _flip(raw, draw(st.integers(0, 63)), draw(st.integers(0, 7)))
    return req.set("signature", f"sig1=:{base64.b64encode(flipped).decode()}:")


def _damage_base64(draw: st.DrawFn, req: Req) -> Req:
    text, b64 = req.get("signature"), _b64(req)
    if b64 is None:
        return req
    # The same bytes spelled with padding bits set, no padding, or a foreign character.
    odd_last = _B64[_B64.index(b64[-1]) | 3]
    at = draw(st.integers(6, len(text) - 2))
    bad = draw(st.sampled_from(["!", "-", "_", " ", "="]))
    choices = [
        f"sig1=:{b64[:-1]}{odd_last}==:",
        f"sig1=:{b64}:",
        f"sig1=:{b64}=:",
        text[:at] + bad + text[at + 1 :],
        f"sig1=:{b64[:-4]}==:",
    ]
    return req.set("signature", draw(st.sampled_from(choices)))


def _flip_body(draw: st.DrawFn, req: Req) -> Req:
    return replace(req, body=_flip(req.body, draw(st.integers(0, 99)), draw(st.integers(0, 7))))


def _digest(draw: st.DrawFn, req: Req) -> Req:
    sha512 = base64.b64encode(hashlib.sha512(req.body).digest()).decode()
    own = req.get("content-digest")
    choices = [f"sha-512=:{sha512}:", own.replace("=:", ":"), f"{own}, sha-512=:{sha512}:"]
    return req.set("content-digest", draw(st.sampled_from(choices)))


def _method(draw: st.DrawFn, req: Req) -> Req:
    return replace(req, method=draw(st.sampled_from(["post", "GET", "OPTIONS", " POST"])))


def _url(draw: st.DrawFn, req: Req) -> Req:
    return replace(req, url=draw(_URLS))


def _second_signature(draw: st.DrawFn, req: Req) -> Req:
    sig_input, sig = req.get("signature-input"), req.get("signature")
    other = draw(st.sampled_from(["sig2", "sig1"]))
    return req.set("signature-input", f"{sig_input}, {sig_input.replace('sig1', other, 1)}").set(
        "signature", f"{sig}, {sig.replace('sig1', other, 1)}"
    )


MUTATIONS: list[Mutation] = [
    _set_value,
    _repeat,
    _drop,
    _rename,
    _whitespace,
    _reorder,
    _component_list,
    _respell(
        ';tag="', [';nonce="n1";tag="', ';expires=1796115000;tag="', ';x="1";tag="', ';bs;tag="']
    ),
    _respell('alg="ed25519"', ['alg="ED25519"', 'alg="rsa-pss-sha512"', 'alg=""', "alg=ed25519"]),
    _respell(';alg="ed25519"', [""]),
    _respell(f';tag="{REQUEST_TAG}"', [';tag="simpul-response"', ""]),
    _respell(";keyid=", [";keyid=;x=", ";keyid=\u00e9", ";keyid=\t"]),
    _respell("sig1=", ["sig2=", "SIG1=", " sig1=", "sig1 ="]),
    _respell("sig1=", ["sig2=", "SIG1="], header="signature"),
    _respell(";", ["; ", " ;"]),
    _respell('" "', ['"  "', '" \t"']),
    _respell("(", ["( "]),
    _created,
    _keyid,
    _flip_signature,
    _damage_base64,
    _flip_body,
    _digest,
    _method,
    _url,
    _second_signature,
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Req, tuple[str, ...]]:
    """A signed request, changed by up to three mutations (often by none), maybe re-signed."""
    req, required = draw(requests())
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        req = mutation(draw, req)
    # Signed again over whatever the mutations made: a client holding a registered key can
    # sign anything, so the base itself must be judged the same way.
    return (resign(req) if draw(st.booleans()) else req), required


def canonical(
    *,
    components: tuple[str, ...] = REQUEST_COMPONENTS,
    created: datetime = NOW,
    extra: dict[str, str] | None = None,
) -> Req:
    body = b'{"nik":"3171014708900001"}'
    signed = sign_request(
        method="POST",
        url=URL,
        headers={
            "X-Road-Client": "ID/GOV/DPMPTSP-DKI/perizinan",
            "X-Road-Id": "6f1c2a8e-1d2b-4c3d-9e4f-5a6b7c8d9e0f",
            "Content-Type": "application/json",
            "Consent-Token": "eyJ.eyJ.c2ln",
            **(extra or {}),
        },
        body=body,
        key=KEY,
        key_id="perizinan-1",
        components=components,
        created=created,
    )
    return Req("POST", URL, [(n.lower(), v) for n, v in signed.items()], body)
