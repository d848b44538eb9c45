# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_profile.xml
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: bootstrap demo test test-fast lint bench bench-fidelity bench-fidelity-long bench-decisions bench-overhead \
	bench-soak bench-fuzz bench-energy bench-hedging bench-scheduling bench-split bench-tenants bench-worker bench-replay bench-policy bench-fleet bench-polls bench-multirobot test-triton scenarios clean

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(PY) -m offload_ros.tools.demo --out demo_out

# Scenario tests pin processes to cores: they run after the parallel pass, one at a time.
test: bootstrap
	$(PY) -m pytest -n 2 -q -m 'not scenario' test
	$(PY) -m pytest -q -m scenario test

test-fast: bootstrap
	$(PY) -m pytest -n 2 -q -m 'not slow and not scenario' test

scenarios: bootstrap
	$(PY) -m offload_ros.scenarios.compare --out scenario_out

lint: bootstrap
	$(PY) -m flake8 offload_ros test bench setup.py

bench-worker: bootstrap
	$(PY) bench/bench_worker.py --out bench/results/worker.json --report docs/bench_worker.md

bench-replay: bootstrap
	$(PY) bench/bench_replay.py --out bench/results/replay.json

bench-policy: bootstrap
	$(PY) bench/bench_policy.py --out bench/results/policy.json

# Validation benchmarks (need root for netns + tc). BENCH_ARGS=--quick for development.
bench: bench-fidelity bench-decisions bench-overhead
	$(PY) bench/validation_report.py

bench-fidelity: bootstrap
	$(PY) bench/bench_fidelity.py --report $(BENCH_ARGS)

# The model below the short cells' noise: six cells of up to 5 minutes (~32 min).
bench-fidelity-long: bootstrap
	$(PY) bench/bench_fidelity.py --bandwidths 20 --rates 2 8 --cell-s 300 \
		--out bench/results/fidelity_long.json --work bench_out/fidelity_long $(BENCH_ARGS)

# Fleets in simulated time: 10/20/50 robots on 2/4/8 workers, references and policies (~20 min).
bench-fleet: bootstrap
	$(PY) bench/bench_fleet.py $(BENCH_ARGS)

# Four robots in network namespaces share two workers (root), and the simulator predicts it.
bench-multirobot: bootstrap
	$(PY) -m offload_ros.scenarios.multirobot --out bench_out/multirobot
	cp bench_out/multirobot/summary.json bench/results/multirobot.json

# What 50 robots' /load polls (2 Hz each) cost one worker's CPU.
bench-polls: bootstrap
	$(PY) bench/bench_polls.py $(BENCH_ARGS)

bench-tenants: bootstrap
	$(PY) bench/bench_tenants.py --report $(BENCH_ARGS)

# REPEATS=3: every policy three times, interleaved (~55 min): phase gaps that hold the
# robot's drift from run to run. make bench keeps one round for its 45 minutes.
REPEATS ?= 1
bench-decisions: bootstrap
	$(PY) bench/bench_decisions.py --repeats $(REPEATS) $(BENCH_ARGS)

bench-overhead: bootstrap
	$(PY) bench/bench_overhead.py $(BENCH_ARGS)

# Issue 7 capabilities, each measured.
bench-energy: bootstrap
	$(PY) bench/bench_energy.py $(BENCH_ARGS)

bench-hedging: bootstrap
	$(PY) bench/bench_hedging.py $(BENCH_ARGS)

bench-scheduling: bootstrap
	$(PY) bench/bench_scheduling.py $(BENCH_ARGS)

bench-split: bootstrap
	$(PY) bench/bench_split.py --report $(BENCH_ARGS)

# Hostile clients against a 256-descriptor worker (~4 min): bench/results/fuzz.json.
bench-fuzz: bootstrap
	$(PY) bench/bench_fuzz.py $(BENCH_ARGS)

# 30 minutes by default; SOAK_MINUTES=5 for a short run.
bench-soak: bootstrap
	$(PY) bench/bench_soak.py --minutes $(or $(SOAK_MINUTES),30)

clean:
	rm -rf build install log demo_out scenario_out bench_out .pytest_cache

# Opt-in: a real Triton (nvidia-pytriton, ~470 MB) needs a venv from Debian's python3.11.
test-triton: bootstrap
	scripts/bootstrap_triton.sh
	.venv-triton/bin/python -m pytest -q -p no:cacheprovider -W 'ignore::ResourceWarning' test_triton
