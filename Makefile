# The two commands a newcomer needs: `make dev` runs onsale, `make test` tests it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The tests that depend on the date and the clock (schedules, the queue and pre-queue,
# holds and their expiry, checkout, tokens, running and retiring events, reconcile, the
# unit tests), which `make test-shifted` runs again with the clock a year ahead.
SHIFTED_TESTS := tests/unit \
	tests/integration/test_events_api.py tests/integration/test_running_events.py \
	tests/integration/test_queue_api.py tests/integration/test_queue_room.py \
	tests/integration/test_queue_bounds.py tests/integration/test_queue_limits.py \
	tests/integration/test_inventory_expiry.py tests/integration/test_inventory_retake.py \
	tests/integration/test_checkout.py tests/integration/test_checkout_hardening.py \
	tests/integration/test_buyer_limits.py tests/integration/test_tickets.py \
	tests/integration/test_checkin.py tests/integration/test_reconcile.py \
	tests/integration/test_recover.py tests/integration/test_retirement.py \
	tests/integration/test_end_to_end.py tests/integration/test_refunds.py \
	tests/integration/test_cancellation.py tests/integration/test_committer.py
SHIFT ?= +365d

.PHONY: dev test test-shifted lint install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'

dev: install
	$(BIN)/onsale dev

lint: install
	$(BIN)/ruff check onsale tests
	$(BIN)/ruff format --check onsale tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# After `make install`. libfaketime (Debian's faketime) shifts this process's clock and,
# through LD_PRELOAD, the embedded Redis, Postgres and Stripe emulator the tests start, so
# they all agree; a test that wrote a calendar date fails here long before that date.
test-shifted: $(BIN)/python
	faketime -f '$(SHIFT)' $(BIN)/python -m pytest -q -p no:cacheprovider $(SHIFTED_TESTS)
