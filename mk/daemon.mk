# The camera daemon's pipeline: the demo, its benchmark and the tracker measurement.
.PHONY: demo bench-daemon track-eval

# `make demo` on a fresh machine: environment, the face assets (mk/data.mk), then the demo
# composes its walk-by video, runs the daemon in emulation mode and draws build/demo/tracks/.
## the main job: a walk-by video from real faces, the daemon on it in emulation, opened records, one picture per track (build/demo/)
demo: $(WORK)/.ready build/assets/.ready
	$(WORK)/bin/python -m snapseal.eval.scenes.demo --out build/demo

# End-to-end fps beside detector-only fps, time per stage, peak RSS (640x480).
## the daemon's own benchmark: detector-only and end-to-end fps, time per stage, peak RSS
bench-daemon: $(WORK)/.ready build/assets/.ready
	$(WORK)/bin/python -m snapseal.eval.bench.pipeline

# The tracker measurement behind the default tracker (simulated + real detector).
## the tracker measurement behind the default tracker (simulated + real detector)
track-eval: $(WORK)/.ready build/assets/.ready
	$(WORK)/bin/python -m snapseal.eval.scenes.track_eval --video
