# The two commands: `make run` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := src/dcdrl_core src/dcdrl_ros src/dcdrl_learning src/dcdrl_sim src/dcdrl_edge src/dcdrl_cloud

.PHONY: venv ros2 run lint test bench bench-quick bench-env colcon clean

venv: $(STAMP)

# Idempotent: rebuilt only when requirements or package metadata change.
$(STAMP): requirements.txt requirements-nodeps.txt $(foreach p,$(PACKAGES),$(p)/setup.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

# Options of the job go in ARGS, e.g. make run ARGS="--num-clients 3 --duration 120" (--help lists them).
ARGS ?=
run: venv
	$(BIN)/python -m dcdrl_cloud.main_job $(ARGS)

# The real ROS 2 that judges every ROS 2 promise: unpacked from $(ROS2_TARBALLS) into .ros2/ when the
# tarballs are there (scripts/ros2_setup.py); tests that need it skip without it, or fail where
# DCDRL_REQUIRE_ROS2=1 (CI). DCDRL_ROS2=/opt/ros/jazzy/setup.bash uses an installed ROS 2 instead.
ROS2_TARBALLS ?= ../shared/ros2

ros2: venv
	$(BIN)/python scripts/ros2_setup.py --tarballs $(ROS2_TARBALLS) $(if $(filter 1 true yes,$(DCDRL_REQUIRE_ROS2)),--require)

# Lint and types (configuration in pyproject.toml): ruff (pyflakes, bugbear, pyupgrade for Python 3.10, import
# order, pycodestyle at 120 columns) on every Python file of the repository, mypy on the packages, bench/ and scripts/.
LINT_PATHS := .
lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

# Two test processes (pytest-xdist), a file's tests in one of them: most tests wait on child processes and
# discovery, so two share the 2 cores well (20 -> ~12 min). TEST_WORKERS=0 runs everything in one.
TEST_WORKERS ?= 2
test: venv lint ros2
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Benchmarks (not tests): every script in bench/, results in runs/bench/<time>/, then the results page.
# Comparison-only packages (stable-baselines3, cpprb, torchrl) live in .venv-bench, never in .venv.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

bench-env: $(BENCH_STAMP)

$(BENCH_STAMP): requirements.txt requirements-nodeps.txt bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r requirements.txt -r bench/requirements.txt
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(BENCH_STAMP)

bench: venv bench-env
	$(BIN)/python bench/run_all.py --python $(BENCH_VENV)/bin/python
	$(BIN)/python bench/render_results.py

bench-quick: venv bench-env
	$(BIN)/python bench/run_all.py --quick --python $(BENCH_VENV)/bin/python
	$(BIN)/python bench/render_results.py

colcon: venv
	$(BIN)/colcon build --base-paths src --packages-ignore dcdrl_msgs

clean:
	rm -rf build install log .ros2
