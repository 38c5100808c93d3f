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


def test_board_estimates_are_shown_beside_the_x86_figures(tmp_path):
    import json

    from snapseal.eval.bench import __main__ as bench

    path = tmp_path / "board-estimate.json"
    assert bench.board_rows(path)[0] == [] and "make board-estimate" in bench.board_rows(path)[1][0]
    path.write_text(json.dumps({"pynq-z2": {"fps_1_face": 15.5, "fps_2_faces": 10.25, "host_ms_per_crop": 4.5,
                                            "best_variant": "v", "detector": {"runtime": "ncnn", "frame_size": [640, 480]}}}))
    rows, notes = bench.board_rows(path)
    assert notes == [] and [row.value for row in rows] == [15.5, 10.25, 4.5]
    assert "ncnn at 640x480" in rows[0].basis


def test_the_board_profile_is_shown_when_it_was_estimated(tmp_path):
    import json

    from snapseal.eval.bench import __main__ as bench

    path = tmp_path / "board-estimate.json"
    profile = {"fps_1_face": 5.5, "fps_2_faces": 5.0, "host_ms_per_crop": 20.0, "detector": {"runtime": "ncnn"}}
    path.write_text(json.dumps({"pynq-z2": {"fps_1_face": 8.0, "fps_2_faces": 7.5, "host_ms_per_crop": 17.0,
                                            "best_variant": "small", "variants": {"profile": profile}}}))
    rows, _ = bench.board_rows(path)
    assert [row.value for row in rows] == [5.5, 5.0, 20.0] and "variant profile" in rows[0].basis
