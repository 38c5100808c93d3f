# Records (seal, store, keys): benchmark and the area's tests in both environments.
.PHONY: bench-records test-records fuzz-records crash-records

RECORDS_TESTS := tests/daemon/records tests/daemon/test_keys.py tests/daemon/test_records.py \
                 tests/daemon/test_service.py tests/daemon/test_capture.py tests/daemon/test_sink.py \
                 tests/daemon/test_crash.py tests/vectors

# Seal + atomic write (fsync) rate of 64x64 crops, record size and overhead per record.
## seal + atomic write rate, record size and overhead
bench-records: $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.bench.records bench --count 1000 --dir build/bench-records

## the records tests in both environments
test-records: $(WORK)/.ready $(BOARD_VENV)/.ready
	$(WORK)/bin/python -m pytest -q $(RECORDS_TESTS) tests/investigator
	$(BOARD_VENV)/bin/python -m pytest -q -m "not build" $(RECORDS_TESTS)

## long fuzz of the record parser, config and key-file loaders (>= 10,000 records; prints counts)
fuzz-records: $(WORK)/.ready
	SNAPSEAL_FUZZ=long $(WORK)/bin/python -m pytest -q -s tests/daemon/records/test_fuzz.py

## SIGKILL the daemon at 100 random moments while sealing (prints records kept and lost per kill)
crash-records: $(WORK)/.ready
	SNAPSEAL_CRASH_KILLS=100 SNAPSEAL_CRASH_VERBOSE=1 $(WORK)/bin/python -m pytest -q -s tests/daemon/test_crash.py -k sigkill
