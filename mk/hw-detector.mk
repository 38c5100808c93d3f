# The face detector on the FPGA: FINN estimates of a 4-bit MTCNN (P-Net on the first pyramid level,
# R-Net, O-Net) beside the VAE's, no Vivado and no training (hw/detector_estimate.py).
#   make estimate-detector [BOARD=pynq-z2|ultra96-v2] [DETECTOR_ARGS="--fps 15 --vae-targets 300,150"]
#   -> build/hw/detector/<board>/estimate.json (one FINN run per network under <board>/<net>/)
DETECTOR_ARGS ?= --vae-targets 300,150,60
# the ARM harness's measured board profile (make board-estimate), when there is one
DETECTOR_ARM = build/board/$(HW_BOARD_NAME)/estimate/profile/result.json

.PHONY: estimate-detector

## FINN estimates (LUT/BRAM/DSP, inferences/s) of a 4-bit MTCNN beside the VAE for BOARD (no Vivado)
estimate-detector: $(WORK)/.ready
	$(HW_PY) -m snapseal.hw.detector_estimate --board $(HW_BOARD_NAME) --out $(HW_OUT)/detector $(DETECTOR_ARGS) \
	  $(if $(wildcard $(DETECTOR_ARM)),--arm-result $(DETECTOR_ARM))
