"""``create_adapter``: names, construction checks, client ownership, services and queries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from adapters import ADAPTER_NAMES, ADAPTER_SERVICES, Adapter, create_adapter
from adapters.errors import QueryInvalid, ServiceUnsupported, UpstreamUnavailable
from broker.sandbox_env import free_port
from tests.adapters.samples import CALL_NIK, DUKCAPIL_URL, EXPECTED_KTP, NIK, dukcapil_element
from tests.adapters.samples import page as dukcapil_page

ROOT = Path(__file__).resolve().parents[2]


class TestRegistry:
    def test_names(self) -> None:
        assert ADAPTER_NAMES == ("dukcapil", "capil")

    def test_services(self) -> None:
        assert dict(ADAPTER_SERVICES) == {
            "dukcapil": frozenset({"ktp", "kk"}),
            "capil": frozenset({"akta-lahir"}),
        }

    @pytest.mark.parametrize("name", ADAPTER_NAMES)
    async def test_builds_an_adapter_by_name(self, name: str) -> None:
        adapter = create_adapter(name, base_url="http://backend.test", timeout=1.0)
        try:
            assert isinstance(adapter, Adapter)
            assert adapter.name == name
        finally:
            await adapter.aclose()

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="unknown adapter 'pajak'"):
            create_adapter("pajak", base_url="http://backend.test", timeout=1.0)

    @pytest.mark.parametrize(
        ("base_url", "timeout"),
        [
            ("backend.test", 1.0),
            ("ftp://backend.test", 1.0),
            ("http://", 1.0),
            ("http://backend.test", 0.0),
            ("http://backend.test", -1.0),
        ],
    )
    def test_refuses_bad_configuration(self, base_url: str, timeout: float) -> None:
        with pytest.raises(ValueError, match=r"base_url|timeout"):
            create_adapter("dukcapil", base_url=base_url, timeout=timeout)


class TestImports:
    def test_adapters_import_neither_fastapi_nor_broker_nor_the_sandbox(self) -> None:
        code = (
            "import sys, adapters, adapters.errors; "
            "print([m for m in ('fastapi', 'broker', 'adapters.sandbox') if m in sys.modules])"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        assert result.stdout.strip() == "[]"

    def test_importing_the_sandbox_builds_nothing(self) -> None:
        code = (
            "import adapters.sandbox as s, adapters.sandbox.population as p; "
            "print(p.generate.cache_info().currsize)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        assert result.stdout.strip() == "0"


class TestClient:
    # An owned client's pooling, timeout and headers: tests/adapters/test_transport.py.
    @pytest.mark.parametrize("used", [False, True])
    async def test_owned_client_is_closed_by_aclose(self, used: bool) -> None:
        adapter = create_adapter(
            "dukcapil", base_url=f"http://127.0.0.1:{free_port()}", timeout=1.0
        )
        if used:  # a refused connection still opens the session
            with pytest.raises(UpstreamUnavailable):
                await adapter.fetch("ktp", {"nik": NIK})
        await adapter.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await adapter.fetch("ktp", {"nik": NIK})

    async def test_given_client_is_used_and_left_open(self) -> None:
        async with httpx.AsyncClient() as client:
            adapter = create_adapter(
                "dukcapil", base_url=f"{DUKCAPIL_URL}/", timeout=1.0, client=client
            )
            with respx.mock(assert_all_called=True) as mock:
                mock.post(CALL_NIK).respond(json=dukcapil_page(dukcapil_element()))
                assert await adapter.fetch("ktp", {"nik": NIK}) == EXPECTED_KTP
            await adapter.aclose()
            assert not client.is_closed


class TestRefusedBeforeTheWire:
    """Nothing is mocked: a request reaching the network would fail the test differently."""

    @pytest.mark.parametrize(
        ("name", "service"),
        [
            ("dukcapil", "akta-lahir"),
            ("capil", "ktp"),
            ("capil", "kk"),
            ("dukcapil", "npwp"),
        ],
    )
    async def test_unsupported_service(self, name: str, service: str) -> None:
        adapter = create_adapter(name, base_url="http://backend.test", timeout=1.0)
        with respx.mock(assert_all_called=True), pytest.raises(ServiceUnsupported) as caught:
            await adapter.fetch(service, {"nik": NIK})
        assert service in caught.value.detail
        await adapter.aclose()

    @pytest.mark.parametrize(
        ("name", "service", "query"),
        [
            pytest.param("dukcapil", "ktp", {}, id="ktp-empty"),
            pytest.param("dukcapil", "ktp", {"no_kk": NIK}, id="ktp-by-no-kk"),
            pytest.param("dukcapil", "ktp", {"nik": NIK, "fields": ["nama"]}, id="ktp-fields"),
            pytest.param("dukcapil", "ktp", {"nik": NIK[:-1]}, id="nik-15-digits"),
            pytest.param("dukcapil", "ktp", {"nik": NIK + "0"}, id="nik-17-digits"),
            pytest.param("dukcapil", "ktp", {"nik": "31740152059OOO12"}, id="nik-letters"),
            pytest.param("dukcapil", "ktp", {"nik": "٣١٧٤٠١٥٢٠٥٩٠٠٠١٢"}, id="nik-arabic-digits"),
            pytest.param("dukcapil", "ktp", {"nik": int(NIK)}, id="nik-number"),
            pytest.param("dukcapil", "kk", {"nik": NIK, "no_kk": NIK}, id="kk-both"),
            pytest.param("dukcapil", "kk", {}, id="kk-neither"),
            pytest.param("dukcapil", "kk", {"no_kk": "../CALL_NIK"}, id="kk-path"),
            pytest.param("capil", "akta-lahir", {"no_akta": "3174-LT-1"}, id="akta-no-office"),
            pytest.param(
                "capil",
                "akta-lahir",
                {"no_akta": "3174-LT-1", "kantor_penerbit": "  "},
                id="akta-blank-office",
            ),
            pytest.param(
                "capil",
                "akta-lahir",
                {"nik": NIK, "no_akta": "3174-LT-1", "kantor_penerbit": "X"},
                id="akta-both",
            ),
        ],
    )
    async def test_invalid_query(self, name: str, service: str, query: dict[str, Any]) -> None:
        adapter = create_adapter(name, base_url="http://backend.test", timeout=1.0)
        with respx.mock(assert_all_called=True), pytest.raises(QueryInvalid) as caught:
            await adapter.fetch(service, query)
        assert NIK not in caught.value.detail
        await adapter.aclose()
