# Deployment to a PYNQ board. `make deploy BOARD=pynq-z2 HOST=xilinx@cam`
# builds a wheel, copies it with the bundle and deploy/ to the board, and runs install.sh there.
# BOARD on the command line overrides the Makefile's BOARD (.venv/board): only this target reads
# it as a board name, and it needs only the workstation env.
DEPLOY_BOARDS := pynq-z2 ultra96-v2
HOST ?=
RECIPIENT ?=
BUNDLE ?= bundles/default
SOURCE ?= 0
CAMERA_ID ?=
REMOTE_DIR ?= snapseal-deploy
SSH ?= ssh
RSYNC ?= rsync
DRY_RUN ?=
DEPLOY_BUILD := build/deploy
WHEEL ?=
# What the board's venv gets from PyPI: its CPU's requirement set (docs in deploy/README.md).
DEPLOY_REQUIREMENTS = requirements/board-$(if $(filter pynq-z2,$(BOARD)),armhf,arm64).txt
# The detector's ncnn weights (both boards' runtime profiles run ncnn): make detector-ncnn.
NCNN_WEIGHTS ?= build/detector/mtcnn-ncnn
DEPLOY_USAGE := usage: make deploy BOARD=pynq-z2|ultra96-v2 HOST=[user@]host RECIPIENT=investigator.pub [BUNDLE=dir] [SOURCE=0|/dev/videoN|rtsp://...] [CAMERA_ID=id] [DRY_RUN=1] [SSH=ssh] [RSYNC=rsync]

.PHONY: deploy deploy-wheel deploy-check

# The wheel install.sh installs into the board's venv (pure Python: one wheel fits both boards).
## build the daemon's wheel into build/deploy
deploy-wheel: $(WORK)/.ready
	rm -rf $(DEPLOY_BUILD) && mkdir -p $(DEPLOY_BUILD)
	$(WORK)/bin/pip wheel $(PIP_QUIET) --no-deps --no-build-isolation -w $(DEPLOY_BUILD) .

## copy wheel, bundle and deploy/ to a board and install: make deploy BOARD=pynq-z2|ultra96-v2 HOST=user@host RECIPIENT=investigator.pub
deploy:
	@if [ -z "$(HOST)" ] || [ -z "$(filter $(DEPLOY_BOARDS),$(BOARD))" ] || [ -z "$(RECIPIENT)" ]; then \
	    echo '$(DEPLOY_USAGE)' >&2; exit 2; fi
	@test -f "$(RECIPIENT)" || { echo "make deploy: RECIPIENT $(RECIPIENT): no such file" >&2; exit 2; }
	@test -f "$(BUNDLE)/manifest.json" || { echo "make deploy: BUNDLE $(BUNDLE): no manifest.json" >&2; exit 2; }
	@test -f "$(NCNN_WEIGHTS)/pnet.param" || { echo "make deploy: NCNN_WEIGHTS $(NCNN_WEIGHTS): no ncnn weights (make detector-ncnn)" >&2; exit 2; }
	@if [ -z "$(WHEEL)" ]; then $(MAKE) --no-print-directory deploy-wheel; fi
	$(RSYNC) -rt --delete --chmod=D0755,F0644 deploy/install.sh deploy/systemd $(if $(WHEEL),$(WHEEL),$(DEPLOY_BUILD)/snapseal-*.whl) $(DEPLOY_REQUIREMENTS) requirements/weights.txt $(HOST):$(REMOTE_DIR)/
	$(RSYNC) -rt --delete --chmod=D0755,F0644 $(BUNDLE)/ $(HOST):$(REMOTE_DIR)/bundle/
	$(RSYNC) -t --chmod=F0644 $(RECIPIENT) $(HOST):$(REMOTE_DIR)/investigator.pub
	$(RSYNC) -rt --delete --chmod=D0755,F0644 $(NCNN_WEIGHTS)/ $(HOST):$(REMOTE_DIR)/mtcnn-ncnn/
	$(SSH) -t $(HOST) "sudo bash $(REMOTE_DIR)/install.sh --board $(BOARD) --bundle $(REMOTE_DIR)/bundle --recipient $(REMOTE_DIR)/investigator.pub --requirements $(REMOTE_DIR)/$(notdir $(DEPLOY_REQUIREMENTS)) --weights $(REMOTE_DIR)/weights.txt --ncnn-weights $(REMOTE_DIR)/mtcnn-ncnn --source '$(SOURCE)'$(if $(CAMERA_ID), --camera-id '$(CAMERA_ID)')$(if $(DRY_RUN), --dry-run)"

# Tools the deploy tests need: shellcheck and systemd-analyze (Debian packages shellcheck, systemd).
# `make test` never installs system packages: the tests name what is missing (skipped on a
# developer's machine, failed under CI); .ci/run installs them.
DEPLOY_TOOLS := shellcheck systemd-analyze
## say which system tools the deploy tests need and are missing (never installs)
deploy-tools-check:
	@for tool in $(DEPLOY_TOOLS); do command -v $$tool >/dev/null || \
	    echo "make: $$tool is missing: the deploy tests that need it will skip (apt-get install shellcheck systemd)" >&2; done
TEST_PREREQS += deploy-tools-check
.PHONY: deploy-tools-check

## the deploy tests alone
deploy-check: $(WORK)/.ready deploy-tools-check
	$(WORK)/bin/python -m pytest -q tests/deploy tests/test_compat.py
