"""The benchmarks keep the workers' logs of a run that failed, or that missed its goal, and only
of those."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.deployment import keep_logs, worker_logs


def test_the_logs_of_a_finished_run_are_removed() -> None:
    with worker_logs() as folder:
        (folder / "worker.log").write_text("{}\n")
    assert not folder.exists()


def test_the_logs_of_a_failed_run_are_kept_and_named_in_the_error() -> None:
    kept: Path | None = None
    with pytest.raises(TimeoutError) as raised, worker_logs() as folder:
        kept = folder
        (folder / "worker.log").write_text("{}\n")
        raise TimeoutError("fewer than 3000 events committed")
    assert kept is not None and (kept / "worker.log").exists()
    assert f"the workers' logs are kept in {kept}" in raised.value.__notes__
    (kept / "worker.log").unlink()
    kept.rmdir()


def test_the_logs_of_a_finished_run_marked_to_keep_are_kept() -> None:
    with worker_logs() as folder:
        (folder / "worker.log").write_text("{}\n")
        assert keep_logs(folder, "p99 1354 ms") == folder
    assert (folder / "worker.log").exists()
    assert (folder / "KEPT").read_text() == "p99 1354 ms\n"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
