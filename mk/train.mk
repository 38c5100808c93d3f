# Model (quantize/): train the QAT VAE, export QONNX, write the bundle.
#   make train DATA=build/data/bootstrap/train.npz [VAL=...] [OBJECTIVE=elbo] [TRAIN_ARGS=...]
#   make bundle            float twin + QAT (from the float weights) on the bootstrap set,
#                          export, write bundles/default, measure (one command for a retrain)
#   make bench-accel       emulate / cpu crops/s, cpu vs emulate and quantized vs float Spearman
TRAIN_DIR    ?= build/train
DATA         ?= build/data/bootstrap/train.npz
VAL          ?= build/data/bootstrap/val.npz
OBJECTIVE    ?= elbo
EPOCHS       ?= 10
THREADS      ?= 1
TRAIN_ARGS   ?= --augment-copies 8
BUNDLE_OUT   ?= bundles/default
BUNDLE_ARGS  ?=
TRAIN        := $(WORK)/bin/python -m snapseal.quantize.train

.PHONY: train train-float bundle bench-accel model-size

# The default bootstrap set comes from `make data` (mk/data.mk).
DATA_PREREQ := $(if $(filter build/data/bootstrap/%,$(DATA)),$(BOOTSTRAP)/.ready)

## QAT-train the VAE: make train DATA=... [VAL=...] [OBJECTIVE=elbo]
train: $(DATA_PREREQ) | $(WORK)/.ready
	$(TRAIN) --data $(DATA) $(if $(wildcard $(VAL)),--val $(VAL)) --out $(TRAIN_DIR)/qat \
	    --objective $(OBJECTIVE) --epochs $(EPOCHS) --threads $(THREADS) $(TRAIN_ARGS) --resume

## train the float twin of the VAE
train-float: $(DATA_PREREQ) | $(WORK)/.ready
	$(TRAIN) --data $(DATA) $(if $(wildcard $(VAL)),--val $(VAL)) --out $(TRAIN_DIR)/float \
	    --objective $(OBJECTIVE) --epochs $(EPOCHS) --threads $(THREADS) $(TRAIN_ARGS) --float --resume

# The committed default bundle: float twin, then QAT starting from it, then export + bundle.
# Fresh runs (no --resume) so a changed objective or data always retrains.
## float twin, QAT from it, export, write bundles/default (one command for a retrain)
bundle: $(DATA_PREREQ) | $(WORK)/.ready
	rm -rf $(TRAIN_DIR)/float $(TRAIN_DIR)/qat
	$(TRAIN) --data $(DATA) $(if $(wildcard $(VAL)),--val $(VAL)) --out $(TRAIN_DIR)/float \
	    --objective $(OBJECTIVE) --epochs $(EPOCHS) --threads $(THREADS) $(TRAIN_ARGS) --float
	$(TRAIN) --data $(DATA) $(if $(wildcard $(VAL)),--val $(VAL)) --out $(TRAIN_DIR)/qat \
	    --objective $(OBJECTIVE) --epochs $(EPOCHS) --threads $(THREADS) $(TRAIN_ARGS) \
	    --init-from $(TRAIN_DIR)/float/last.pt
	$(WORK)/bin/python -m snapseal.quantize.bundle_writer $(TRAIN_DIR)/qat/last.pt --out $(BUNDLE_OUT) \
	    --float-checkpoint $(TRAIN_DIR)/float/last.pt $(if $(wildcard $(VAL)),--val $(VAL)) $(BUNDLE_ARGS)

## emulate / cpu crops/s and their rank agreement
bench-accel: | $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.model.bench_accel --bundle $(BUNDLE_OUT) \
	    $(if $(wildcard $(VAL)),--crops $(VAL)) \
	    $(if $(wildcard $(TRAIN_DIR)/float/last.pt),--float-checkpoint $(TRAIN_DIR)/float/last.pt)

## parameters and weight memory of the VAE
model-size: | $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.quantize.model
