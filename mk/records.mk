# Records (seal, store, keys): benchmark and the area's tests in both environments.
.PHONY: bench-records test-records

RECORDS_TESTS := tests/daemon/records tests/daemon/test_keys.py tests/daemon/test_records.py \
                 tests/daemon/test_service.py tests/daemon/test_capture.py tests/investigator

# Seal + atomic write (fsync) rate of 64x64 crops, record size and overhead per record.
## seal + atomic write rate, record size and overhead
bench-records: $(WORK)/.ready
	$(WORK)/bin/python -m snapseal.eval.bench.records bench --count 1000 --dir build/bench-records

## the records tests in both environments
test-records: $(WORK)/.ready $(BOARD_VENV)/.ready
	$(WORK)/bin/python -m pytest -q $(RECORDS_TESTS)
	$(BOARD_VENV)/bin/python -m pytest -q -m "not build" $(RECORDS_TESTS)
