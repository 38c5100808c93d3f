# The ARM harness (eval/board/): the daemon on a PYNQ-Z2 (Cortex-A9, armhf) or Ultra96-V2
# (Cortex-A53, arm64) CPU under qemu-user, from a Debian sysroot, installed by deploy/install.sh;
# instruction counts per pipeline stage -> estimated frames/s (docs/HARDWARE.md, "Boards").
#   make board-sim BOARD=pynq-z2|ultra96-v2   sysroot + board install + selftest + tests + estimate
#   make board-estimate                        every board's configurations -> build/bench/board-estimate.json
#   make board-test [BOARD=...]                the daemon's tests in the guest (both boards by default)
BOARD_SIM_BOARDS := pynq-z2 ultra96-v2
BOARD_SIM = $(or $(filter $(BOARD_SIM_BOARDS),$(BOARD)),pynq-z2)
BOARD_TEST_BOARDS = $(or $(filter $(BOARD_SIM_BOARDS),$(BOARD)),$(BOARD_SIM_BOARDS))
BOARD_HARNESS = $(WORK)/bin/python eval/board/harness.py
BOARD_TOOLS_STAMP := build/board/.tools.ready

.PHONY: board-tools board-setup board-sim board-estimate board-test

$(BOARD_TOOLS_STAMP):
	@missing=$$($(BOARD_HARNESS) tools); if [ -n "$$missing" ]; then \
	    echo "board: installing $$missing (apt-get)"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi
	@mkdir -p $(dir $@) && touch $@

## the ARM harness's host packages (mmdebstrap, qemu-user, gcc), installed with apt-get when missing
board-tools: $(WORK)/.ready $(BOARD_TOOLS_STAMP)

## Debian sysroot for BOARD's CPU + the board install (deploy/install.sh --root) under qemu
board-setup: board-tools detector-ncnn
	$(BOARD_HARNESS) setup --board $(BOARD_SIM)

## BOARD=pynq-z2|ultra96-v2 under qemu: board install, selftest --backend fpga, tests, default estimate
board-sim: board-setup
	$(BOARD_HARNESS) selftest --board $(BOARD_SIM)
	$(BOARD_HARNESS) test --board $(BOARD_SIM)
	$(BOARD_HARNESS) estimate --board $(BOARD_SIM) --variant stock

## estimated frames/s of every board configuration (instruction counts) -> build/bench/board-estimate.json
board-estimate: board-tools detector-ncnn
	@for board in $(BOARD_SIM_BOARDS); do \
	    $(BOARD_HARNESS) setup --board $$board && $(BOARD_HARNESS) estimate --board $$board --variant all || exit 1; done

## the daemon's tests in the ARM guest (both boards, or BOARD=...), from the board install
board-test: board-tools detector-ncnn
	@for board in $(BOARD_TEST_BOARDS); do \
	    $(BOARD_HARNESS) setup --board $$board && $(BOARD_HARNESS) selftest --board $$board \
	        && $(BOARD_HARNESS) test --board $$board || exit 1; done
