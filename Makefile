# The two commands: `make run` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := src/dcdrl_core src/dcdrl_sim src/dcdrl_edge src/dcdrl_cloud

.PHONY: venv run test bench bench-quick colcon clean

venv: $(STAMP)

# Idempotent: rebuilt only when requirements or package metadata change.
$(STAMP): requirements.txt requirements-nodeps.txt $(foreach p,$(PACKAGES),$(p)/setup.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

run: venv
	$(BIN)/python -m dcdrl_cloud.main_job

test: venv
	$(BIN)/python -m pytest

colcon: venv
	$(BIN)/colcon build --base-paths src --packages-ignore dcdrl_msgs

clean:
	rm -rf build install log
