# Measure: model facts and the default-score research (eval/model/).
#   make measure        model facts, quantized vs float, degradation ranking, speed
#                       -> build/measure/quality.{json,md}
#   make candidates     every candidate score on the degradation test (2-fold CV by identity)
#                       -> build/measure/candidates.{json,md}
MEASURE_ARGS    ?=
CANDIDATE_ARGS  ?=

.PHONY: measure candidates

## model facts, quantized vs float, degradation ranking -> build/measure/quality.{json,md}
measure: $(BOOTSTRAP)/.ready | $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.model.measure $(MEASURE_ARGS)

## every candidate score on the degradation test, 2-fold CV by identity -> build/measure/candidates.{json,md}
candidates: $(BOOTSTRAP)/.ready | $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.model.score_candidates $(CANDIDATE_ARGS)
