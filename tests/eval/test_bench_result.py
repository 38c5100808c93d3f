"""The daemon benchmark hands back a result object (eval/bench/pipeline.py), which `make bench`
(eval/bench/__main__.py) reads directly instead of parsing printed text."""

from __future__ import annotations

from types import SimpleNamespace

from snapseal.eval.bench import pipeline


def _round(mode: str, seconds: float, detect_s: float) -> pipeline.Round:
    summary = SimpleNamespace(fps=100 / seconds, seconds=seconds, detections=40, records_written=2,
                              stage_ms_per_frame={"detect": 5.0, "score": 0.5}, score_busy_ms_per_frame=0.4)
    stats = SimpleNamespace(score_seconds=0.2, crops_scored=40, batches=3)
    return pipeline.Round(mode, summary, detect_s, detect_s, stats)


def _result() -> pipeline.PipelineBench:
    rounds = [_round("worker", 2.0, 1.0), _round("worker", 3.0, 1.0), _round("worker", 2.5, 1.0)]
    return pipeline.PipelineBench(100, 640, 480, "walkby.avi", "emulate", "complexity", rounds,
                                  {"batch": 4.0, "pack_ms": 1.0, "unpack_ms": 1.0}, 90.0, 200.0)


def test_medians_come_from_the_rounds():
    result = _result()
    assert result.median("worker").summary.seconds == 2.5
    assert result.detector_fps() == 100.0
    assert result.pipeline_fps() == 40.0


def test_make_bench_takes_the_figures_from_the_result(monkeypatch):
    from snapseal.eval.bench import __main__ as bench

    monkeypatch.setattr(pipeline, "run_benchmark", lambda **_: _result())
    rows, lines = bench.daemon_rows(100)
    assert [row.value for row in rows] == [100.0, 40.0]
    assert rows[1].ratio == 0.4
    assert any(line.startswith("pipeline end to end") for line in lines)
