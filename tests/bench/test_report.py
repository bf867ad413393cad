"""The benchmark's arithmetic: percentiles, targets and the printed report."""

from __future__ import annotations

import io
from typing import Any

import pytest

from bench.__main__ import main as bench_main
from bench.loadgen import percentiles
from bench.report import median_rounds, render, targets


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

    def test_a_ratio_just_under_the_target_does_not_read_as_met(self) -> None:
        results = _results(rate=1200.0)
        results["broker"][-1]["per_second"] = 0.298 * results["direct"][-1]["per_second"]
        figures = {name: (met, figure) for name, met, figure in targets(results)}
        met, figure = figures["broker/direct >= 0.3"]
        assert not met
        assert figure.startswith("0.298 at c=")

    def test_pss_is_shown_beside_rss_and_not_judged(self) -> None:
        results = _results(rate=1200.0, rss=250.0)
        for row in results["broker"]:
            row["peak_pss_mb"] = 150.0
        figures = {name: (met, figure) for name, met, figure in targets(results)}
        assert figures["peak RSS <= 200 MB"] == (False, "250 MB (PSS 150 MB)")
        assert targets(_results(rate=1200.0))[4][2] == "120 MB"  # a file without PSS

    def test_the_load_generators_own_cpu_is_printed_when_recorded(self) -> None:
        results = _results(rate=1200.0)
        out = io.StringIO()
        render(results, out)
        assert "load generator" not in out.getvalue()  # a file from before it was recorded
        for row in results["broker"]:
            row["loadgen_cpu_us_per_request"] = 48.6
        results["direct"][0]["loadgen_cpu_us_per_request"] = 31.2
        out = io.StringIO()
        render(results, out)
        line = next(t for t in out.getvalue().splitlines() if "load generator" in t)
        assert line.endswith("broker | direct: c=1 49 | 31, c=32 49 | -")
        assert "signed inside" not in out.getvalue()

    def test_requests_signed_inside_a_window_are_named(self) -> None:
        results = _results(rate=1200.0)
        for row in results["broker"]:
            row["loadgen_cpu_us_per_request"] = 48.6
            row["signed_in_window"] = 0
        results["broker"][1]["signed_in_window"] = 1665
        results["broker"][1]["signing_us"] = 351.4
        out = io.StringIO()
        render(results, out)
        line = next(t for t in out.getvalue().splitlines() if "signed inside" in t)
        assert ": c=32 1665 (≈351 us each), CPU the load generator took" in line
        assert "c=1 " not in line

    def test_the_file_mapped_part_of_peak_rss_is_printed_when_recorded(self) -> None:
        results = _results(rate=1200.0)
        out = io.StringIO()
        render(results, out)
        assert "mapped from files" not in out.getvalue()  # a file from before it was recorded
        results["broker"][1]["peak_rss_file_mb"] = 66.4
        out = io.StringIO()
        render(results, out)
        line = next(t for t in out.getvalue().splitlines() if "mapped from files" in t)
        assert "(MB): c=32 66 of 120;" in line

    def test_the_writers_threads_have_rows_of_their_own_when_recorded(self) -> None:
        results = _results(rate=1200.0)
        out = io.StringIO()
        render(results, out)
        lines = out.getvalue().splitlines()
        # A file from before they were recorded: dashes, and "rest" as it was.
        assert next(t for t in lines if t.startswith("audit writer's thread")).split() == [
            "audit",
            "writer's",
            "thread",
            "-",
            "-",
            "-",
        ]
        assert next(t for t in lines if t.startswith("http, framework, rest")).endswith("470")
        results["broker"][1]["thread_us"] = {
            "audit writer's thread": 61.4,
            "replay cache's thread": 38.2,
        }
        out = io.StringIO()
        render(results, out)
        lines = out.getvalue().splitlines()
        assert next(t for t in lines if t.startswith("audit writer's thread")).endswith("-      61")
        assert next(t for t in lines if t.startswith("replay cache's thread")).endswith("-      38")
        # 480 us in all, 10 of them schema (the signature awaits at 32), 100 the two threads.
        assert next(t for t in lines if t.startswith("http, framework, rest")).endswith("370")

    @pytest.mark.parametrize(
        ("pinned", "header"),
        [
            (None, "2 broker worker(s), 5 s per phase"),  # a file from before it was recorded
            (True, "2 broker worker(s), pinned to CPUs, 5 s per phase"),
            (False, "2 broker worker(s), unpinned, 5 s per phase"),
        ],
    )
    def test_the_header_says_whether_the_workers_were_pinned(
        self, pinned: bool | None, header: str
    ) -> None:
        results = _results(rate=1200.0)
        if pinned is not None:
            results["config"]["pinned"] = pinned
        out = io.StringIO()
        render(results, out)
        assert header in out.getvalue()

    def test_report_prints_rows_stages_and_targets(self) -> None:
        out = io.StringIO()
        render(_results(rate=1200.0), out)
        text = out.getvalue()
        assert "  32     1200" in text
        assert "signature" in text
        assert "[met] exchanges/s >= 1000: 1200/s" in text


def _rounds(
    broker_rates: list[float],
    direct_rates: list[float],
    *,
    errors: tuple[int, ...] = (),
    rss: tuple[float, ...] = (),
) -> dict[str, Any]:
    """Results of ``len(broker_rates)`` rounds at concurrency 1 and 32 (rates are c=32's)."""
    results = _results(rate=1200.0)
    one_broker, broker = results["broker"]
    one_direct, direct = results["direct"]
    results["config"]["rounds"] = len(broker_rates)
    results["broker"], results["direct"] = [], []
    for round_ in range(len(broker_rates)):
        results["broker"].append({**one_broker, "round": round_})
        results["direct"].append({**one_direct, "round": round_})
    for round_, (rate, direct_rate) in enumerate(zip(broker_rates, direct_rates, strict=True)):
        results["broker"].append(
            {
                **broker,
                "per_second": rate,
                "round": round_,
                "errors": errors[round_] if round_ < len(errors) else 0,
                "peak_rss_mb": rss[round_] if round_ < len(rss) else 120.0,
            }
        )
        results["direct"].append({**direct, "per_second": direct_rate, "round": round_})
    return results


class TestRounds:
    def test_the_median_round_beside_its_own_direct_window(self) -> None:
        chosen = median_rounds(_rounds([1000.0, 1400.0, 1200.0], [5000.0, 3000.0, 4000.0]))
        rows = {row["concurrency"]: row for row in chosen["broker"]}
        assert rows[32]["per_second"] == 1200.0
        assert [row["round"] for row in chosen["direct"]] == [
            row["round"] for row in chosen["broker"]
        ]
        assert {row["concurrency"]: row for row in chosen["direct"]}[32]["per_second"] == 4000.0

    def test_even_count_takes_the_lower_middle(self) -> None:
        chosen = median_rounds(_rounds([900.0, 1300.0, 1100.0, 1500.0], [4000.0] * 4))
        assert {row["concurrency"]: row for row in chosen["broker"]}[32]["per_second"] == 1100.0

    def test_targets_judge_the_median_round(self) -> None:
        # The best round (1400/s) would make 0.47 against its own direct window; the median
        # round makes 1200 / 4000 = 0.30.
        figures = {
            name: (met, figure)
            for name, met, figure in targets(
                _rounds([1000.0, 1400.0, 1200.0], [5000.0, 3000.0, 4000.0])
            )
        }
        assert figures["broker/direct >= 0.3"] == (True, "0.300 at c=32")
        assert figures["exchanges/s >= 1000"] == (True, "1200/s")

    def test_an_error_in_any_round_misses_the_target(self) -> None:
        results = _rounds([1000.0, 1400.0, 1200.0], [4000.0] * 3, errors=(0, 2, 0))
        outcome = {name: met for name, met, _ in targets(results)}
        assert outcome["no error responses"] is False  # round 1 (0-based) is not the median

    def test_the_peak_rss_of_any_round_counts(self) -> None:
        results = _rounds([1000.0, 1400.0, 1200.0], [4000.0] * 3, rss=(120.0, 250.0, 120.0))
        outcome = {name: met for name, met, _ in targets(results)}
        assert outcome["peak RSS <= 200 MB"] is False

    def test_report_lists_every_round_and_shows_the_median(self) -> None:
        out = io.StringIO()
        render(_rounds([1000.0, 1400.0, 1200.0], [5000.0, 3000.0, 4000.0]), out)
        text = out.getvalue()
        assert "  32    1000 (0.200)    1400 (0.467)    1200 (0.300)" in text
        assert "  32     1200" in text  # the median round's row, and no other round's
        assert "  32     1000" not in text
        assert "  32     1400" not in text
        assert "Targets (on the median rounds)" in text

    def test_report_marks_a_rounds_errors_and_a_missing_direct_window(self) -> None:
        results = _rounds([1000.0, 1400.0, 1200.0], [5000.0, 3000.0, 4000.0], errors=(0, 2, 0))
        del results["direct"][-1]  # round 2 (0-based) at c=32: no direct window
        out = io.StringIO()
        render(results, out)
        assert "  32    1000 (0.200)    1400 (0.467, 2 errors)    1200 (-)" in out.getvalue()
        assert "[MISSED] no error responses: 2 errors" in out.getvalue()


class TestOptions:
    @pytest.mark.parametrize("rounds", ["0", "-1", "two"])
    def test_rounds_must_be_a_whole_number_of_at_least_one(self, rounds: str) -> None:
        with pytest.raises(SystemExit) as exit_:
            bench_main(["--rounds", rounds])
        assert exit_.value.code == 2

    @pytest.mark.parametrize(
        ("option", "value", "range_"),
        [
            *(("--duration", v, "above 0 and up to 60") for v in ("0", "-5", "61", "nan", "x")),
            *(("--warmup", v, "from 0 up to 60") for v in ("-1", "61", "nan", "one")),
        ],
    )
    def test_a_phase_lasts_at_most_a_minute(
        self, option: str, value: str, range_: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A phase's requests are signed before it, and a signature is good for 300 s."""
        with pytest.raises(SystemExit) as exit_:
            bench_main([option, value])
        assert exit_.value.code == 2
        assert f"is not a number of seconds {range_}" in capsys.readouterr().err
