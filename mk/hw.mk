# Hardware (hw/): FINN estimates, bitstreams, bit-exact verification.
#   make estimate BOARD=pynq-z2|ultra96-v2   no Vivado: build/hw/<board>/estimate.json + .md
#   make bitstream BOARD=...                  needs XILINX_VIVADO + vitis_hls/vivado on PATH;
#                                             writes build/hw/<board>/bundle (a copy + .bit/.hwh)
#   make verify-hw                            Brevitas -> QONNX -> FINN -> hw layers -> emulate
#   make golden [HW_BUNDLE=dir]               store the golden vectors in the bundle (<bundle>/golden,
#                                             hashed in its manifest); after every new bundle
HW_BOARD   ?= pynq-z2
HW_BUNDLE  ?=
HW_OUT     ?= build/hw
HW_PY      := $(WORK)/bin/python
HW_MODEL   ?=
HW_BUNDLE_ARG := $(if $(HW_BUNDLE),--bundle $(HW_BUNDLE))
# real face crops for the golden set (half of it; the rest are structured patterns)
HW_FACES   ?= build/data/bootstrap/train.npz
HW_FACES_ARG = $(if $(wildcard $(HW_FACES)),--faces $(HW_FACES))
HW_MODEL_ARG := $(if $(HW_MODEL),--model $(HW_MODEL))
# BOARD is the Makefile's board venv path; a board NAME on the command line overrides it.
HW_BOARD_NAME = $(if $(filter pynq-z2 ultra96-v2,$(BOARD)),$(BOARD),$(if $(filter command line,$(origin BOARD)),$(BOARD),$(HW_BOARD)))

.PHONY: estimate bitstream verify-hw golden test-hw

## FINN's resource and throughput estimates for BOARD=pynq-z2|ultra96-v2 (no Vivado needed)
estimate: $(WORK)/.ready
	$(HW_PY) -m snapseal.hw.cli estimate --board $(HW_BOARD_NAME) $(HW_BUNDLE_ARG) $(HW_MODEL_ARG) --out $(HW_OUT)

## the FPGA bitstream bundle for BOARD (needs Vivado + Vitis HLS)
bitstream: $(WORK)/.ready
	$(HW_PY) -m snapseal.hw.cli bitstream --board $(HW_BOARD_NAME) $(HW_BUNDLE_ARG) --out $(HW_OUT)

## bit-exact check Brevitas -> QONNX -> FINN -> hardware layers -> emulate on golden crops
verify-hw: $(WORK)/.ready
	$(HW_PY) -m snapseal.hw.verify $(HW_BUNDLE_ARG) $(HW_FACES_ARG) --out $(HW_OUT)/verify

## re-write the bundle's golden vectors (after every new bundle)
golden: $(WORK)/.ready
	$(HW_PY) -m snapseal.hw.verify $(HW_BUNDLE_ARG) $(HW_FACES_ARG) --out $(HW_OUT)/verify --write-golden

## the hardware tests alone
test-hw: $(WORK)/.ready
	$(HW_PY) -m pytest -q tests/hw tests/daemon/test_fpga_backend.py tests/daemon/test_fpga_selftest.py
