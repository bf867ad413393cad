"""The benchmark's arithmetic: percentiles, targets and the printed report."""

from __future__ import annotations

import io
from typing import Any

import pytest

from bench.loadgen import percentiles
from bench.report import render, targets


def _results(*, rate: float, errors: int = 0, rss: float = 120.0) -> dict[str, Any]:
    row = {
        "p50_ms": 1.5,
        "p95_ms": 3.0,
        "p99_ms": 4.0,
        "peak_rss_mb": rss,
        "errors": errors,
        "stage_us": {"signature": 300.0, "schema": 10.0},
    }
    return {
        "when": "2026-11-27T00:00:00+00:00",
        "machine": {"cpus": 2, "cpu_model": "test", "python": "3.11"},
        "config": {"workers": 2, "duration": 5, "audit": "sqlite (durable)"},
        "floors_us": {"signature": 250.0, "schema": 10.0},
        "direct": [
            {"concurrency": 1, "per_second": 2000.0, "p50_ms": 0.5, "cpu_us_per_request": 200.0},
            {"concurrency": 32, "per_second": 3000.0, "p50_ms": 9, "cpu_us_per_request": 150.0},
        ],
        "broker": [
            {**row, "concurrency": 1, "per_second": rate / 2, "cpu_us_per_request": 500.0},
            {**row, "concurrency": 32, "per_second": rate, "cpu_us_per_request": 480.0},
        ],
    }


class TestPercentiles:
    @pytest.mark.parametrize(
        ("samples", "expected"),
        [
            ([], [0.0, 0.0, 0.0]),
            ([5.0], [5.0, 5.0, 5.0]),
            ([float(i) for i in range(1, 101)], [50.0, 95.0, 99.0]),
        ],
    )
    def test_nearest_rank(self, samples: list[float], expected: list[float]) -> None:
        assert percentiles(samples) == expected


class TestTargets:
    def test_all_met(self) -> None:
        outcome = {name: met for name, met, _ in targets(_results(rate=1200.0))}
        assert all(outcome.values()), outcome

    @pytest.mark.parametrize(
        ("results", "missed"),
        [
            (_results(rate=900.0), "exchanges/s >= 1000"),
            (_results(rate=800.0), "broker/direct >= 0.3"),
            (_results(rate=1200.0, errors=3), "no error responses"),
            (_results(rate=1200.0, rss=250.0), "peak RSS <= 200 MB"),
        ],
    )
    def test_each_miss_is_named(self, results: dict[str, Any], missed: str) -> None:
        outcome = {name: met for name, met, _ in targets(results)}
        assert outcome[missed] is False

    def test_report_prints_rows_stages_and_targets(self) -> None:
        out = io.StringIO()
        render(_results(rate=1200.0), out)
        text = out.getvalue()
        assert "  32     1200" in text
        assert "signature" in text
        assert "[met] exchanges/s >= 1000: 1200/s" in text
