"""Every benchmark of `python -m bench run` runs at a tiny size and reports its figures.

These check what a run produces (keys, positive counts, a sound book), never how fast: speed
on a shared machine is what the benchmarks themselves report, as ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import (
    console_queue,
    in_process,
    latency,
    ledger_growth,
    memory,
    replay,
    throughput,
    ticks,
)
from bench.cli import main
from bench.deployment import WorkerShape
from testbed import workload

SHAPE = WorkerShape(processes=1, threads=2)


def assert_reported(result_json: dict[str, object]) -> None:
    assert set(result_json) == {"figure", "reference", "ratio", "goal", "met", "metrics", "notes"}
    assert isinstance(result_json["ratio"], float) and result_json["ratio"] > 0


def test_the_replay_benchmark_replays_every_event_and_its_reference() -> None:
    result = replay.run(300)
    assert_reported(result.as_json())
    assert result.metrics["events"] == 300
    assert result.metrics["dead_letters"] == 0
    assert result.metrics["notifications"] > 0
    assert result.metrics["reference_tx_per_s"] > 0


def test_the_replay_benchmark_reports_the_median_of_its_runs() -> None:
    result = replay.run(200, runs=3)
    rates = result.metrics["events_per_s_runs"]
    references = result.metrics["reference_tx_per_s_runs"]
    assert len(rates) == len(references) == 3
    assert result.metrics["events_per_s"] == sorted(rates)[1]
    assert result.metrics["reference_tx_per_s"] == sorted(references)[1]
    assert result.notes and result.notes[0].startswith("median of 3 runs")
    with pytest.raises(ValueError, match="at least 1"):
        replay.run(200, runs=0)


@pytest.mark.postgres
def test_the_deadline_benchmark_fires_every_due_deadline() -> None:
    result = ticks.run([20_000], due=100)
    assert_reported(result.as_json())
    assert [tick["fired"] for tick in result.metrics["ticks"]] == [100, 100]
    assert [tick["stored"] for tick in result.metrics["ticks"]] == [2_000, 20_000]


@pytest.mark.postgres
def test_the_ledger_benchmark_reads_and_audits_a_sound_book_at_each_size() -> None:
    result = ledger_growth.run([1_000, 5_000])
    assert_reported(result.as_json())
    points = result.metrics["points"]
    assert [point["transfers"] for point in points] == [1_000, 5_000]
    assert all(point["audit_ok"] and point["balance_read_us"] > 0 for point in points)
    # Every size's ratios are against the smallest's, measured in the same rounds.
    assert points[0]["balance_read_ratio"] == points[0]["audit_per_transfer_ratio"] == 1.0
    assert result.ratio == points[-1]["balance_read_ratio"] > 0


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_the_throughput_benchmark_commits_every_event_through_the_workers() -> None:
    result = throughput.run(200, SHAPE)
    assert_reported(result.as_json())
    assert result.metrics["events"] == 200
    assert result.metrics["events_per_s"] > 0
    assert result.metrics["reference_tx_per_s"] > 0
    assert (result.metrics["processes"], result.metrics["threads"]) == (1, 2)
    # Whose CPU: the workers, their database and broker, and the publishers all spent some.
    event = result.metrics["cpu_per_event"]
    assert min(event["engine_us"], event["postgresql_us"]) > 0
    # RabbitMQ's share of 200 events can round to 0 at the 10 ms clock tick its CPU is read in.
    assert event["rabbitmq_us"] >= 0
    assert event["benchmark_children_us"] > 0
    assert abs(event["total_us"] - sum(v for k, v in event.items() if k != "total_us")) <= 6
    transaction = result.metrics["reference_cpu_per_tx"]
    assert transaction["engine_us"] == 0
    assert min(transaction["benchmark_children_us"], transaction["postgresql_us"]) > 0
    # The same events drained as a queued backlog (without their ticks, as before the ordered
    # intake), and through the transport's floor (a plain consumer of refunds.intake that only
    # writes the reference transaction), live and as a backlog: each committed its events, and
    # its consumers and the database spent CPU on them.
    without_ticks = sum(1 for e in workload.events(200) if e["type"] != "deadline.tick")
    assert 0 < without_ticks < 200
    for mode, events in (
        ("backlog", without_ticks),
        ("floor", 200),
        ("floor_backlog", without_ticks),
    ):
        figures = result.metrics[mode]
        assert figures["events"] == events and 0 < figures["counted_events"] <= events
        assert figures["events_per_s"] > 0 and figures["ratio"] > 0
        cpu = figures["cpu_per_event"]
        assert min(cpu["engine_us"], cpu["postgresql_us"]) > 0
    assert result.metrics["counted_events"] == result.metrics["floor"]["counted_events"] == 200


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_the_latency_benchmark_times_notifications_of_the_events_it_sent() -> None:
    result = latency.run(60.0, 2.0, SHAPE)
    assert_reported(result.as_json())
    engine = result.metrics["engine"]
    assert engine["events"] == 60
    assert 0 < engine["events_with_notifications"] <= engine["events"]
    assert 0 < engine["p50_ms"] <= engine["p95_ms"] <= engine["p99_ms"] <= engine["max_ms"]
    assert result.metrics["broker"]["received"] == result.metrics["broker"]["messages"]


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_the_memory_benchmark_samples_the_worker_until_every_event_is_in() -> None:
    result = memory.run(200, threads=2)
    assert_reported(result.as_json())
    samples = result.metrics["samples"]
    assert samples[-1]["events"] >= 200
    assert all(sample["rss_kib"] > 0 for sample in samples)


@pytest.mark.postgres
def test_the_console_queue_benchmark_renders_each_page_and_explains_its_query() -> None:
    result = console_queue.run(1_000, requests=3)
    assert_reported(result.as_json())
    pages, plans = result.metrics["pages"], result.metrics["plans"]
    assert [page["scenario"] for page in pages] == [plan["scenario"] for plan in plans]
    assert len(pages) == 6 and result.metrics["disputes"] == 1_000
    # Every page lists disputes; the first and the deep pages of the open queue are full.
    assert all(page["rows"] > 0 and page["p95_ms"] >= page["median_ms"] > 0 for page in pages)
    assert pages[0]["rows"] == pages[2]["rows"] == 50
    # The plan is the console's own statement, run again under EXPLAIN ANALYZE.
    assert all(plan["statements"] >= 1 and "disputes" in "\n".join(plan["plan"]) for plan in plans)
    assert result.ratio == pages[2]["median_ms"] / pages[0]["median_ms"]


def test_one_command_runs_the_chosen_benchmarks_and_writes_their_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--size", "tiny", "--only", "replay", "--no-plot", "--results-dir", str(tmp_path)]
    )
    assert code == 0
    (written,) = tmp_path.glob("*.json")
    doc = json.loads(written.read_text())
    assert set(doc) == {"measured_at", "command", "size", "machine", "benchmarks", "failures"}
    assert list(doc["benchmarks"]) == ["replay"]
    assert doc["failures"] == {}
    assert doc["machine"]["postgresql"]
    printed = capsys.readouterr().out
    assert "replay" in printed and str(written) in printed


@pytest.mark.postgres
def test_the_in_process_diagnostic_times_events_through_the_unit_of_work() -> None:
    result = in_process.measure(30, warm_up=10)
    assert result.events == 30
    assert result.cpu_us > 0
    assert result.wall_us > 0
