# RangeKV — build, test and simulate. `make test` works on a fresh clone: it installs and builds
# what it needs. Every target is phony; `install` is guarded by the lockfile's timestamp.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Simulator bounds for `make test` (seeds to run, steps per seed).
SIM_SEEDS ?= 3000
SIM_STEPS ?= 10000
# `make sim`: SEEDS=<n> runs n seeds; SEED=<n> replays that one seed verbosely (it wins over SEEDS).
SEEDS ?= 200
SEED ?=
STEPS ?= $(SIM_STEPS)

SIM_RUNNER := dist/tests/sim/run.js
# Fails clearly when the simulator is not there (tests/sim/run.ts is compiled by `build`).
CHECK_SIM_RUNNER = @test -f $(SIM_RUNNER) || { echo "$(SIM_RUNNER) is missing: the simulator (tests/sim/run.ts) has not landed or did not build" >&2; exit 1; }

.PHONY: install build tools test sim run stop bench jepsen clean

# npm ci only when node_modules is missing or package-lock.json is newer than npm's record of
# what it installed (node_modules/.package-lock.json).
install:
	@if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
		echo "npm ci (node_modules missing or older than package-lock.json)"; \
		npm ci; \
		touch node_modules/.package-lock.json; \
	fi

# `npx --no` refuses to download a package when the local one is missing (the registry's `tsc`
# package is not TypeScript).
build: install
	npx --no -- tsc -p tsconfig.json
	chmod +x bin/kvd bin/kvctl

# Debian packages the tests need, installed with apt-get when we are root (as on CI and the
# project's machines): protoc checks that proto/ compiles as is (tests/integration/proto.test.ts);
# iproute2 and iptables build the Jepsen suite's network namespaces and partitions (tests/jepsen).
tools:
	@missing=""; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "make test needs these Debian packages:$$missing (sudo apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi

test: build tools
	npx --no -- jest --ci
	$(CHECK_SIM_RUNNER)
	node $(SIM_RUNNER) --seeds $(SIM_SEEDS) --steps $(SIM_STEPS)

sim: build
	$(CHECK_SIM_RUNNER)
	@if [ -n "$(SEED)" ]; then \
		[[ "$(SEED)" =~ ^[0-9]+$$ ]] || { echo "make sim: SEED must be a non-negative integer, got '$(SEED)'" >&2; exit 2; }; \
		echo "node $(SIM_RUNNER) --seed $(SEED) --steps $(STEPS)"; \
		node $(SIM_RUNNER) --seed $(SEED) --steps $(STEPS); \
	else \
		[[ "$(SEEDS)" =~ ^[1-9][0-9]*$$ ]] || { echo "make sim: SEEDS must be a positive integer, got '$(SEEDS)'" >&2; exit 2; }; \
		echo "node $(SIM_RUNNER) --seeds $(SEEDS) --steps $(STEPS)"; \
		node $(SIM_RUNNER) --seeds $(SEEDS) --steps $(STEPS); \
	fi

# A 3-node cluster on 127.0.0.1:7001-7003 (N=5 for five); `make stop` stops it.
N ?= 3
run: build
	scripts/cluster.sh start -n $(N)

stop:
	scripts/cluster.sh stop

# RangeKV against etcd on loopback (needs etcd: apt-get install -y etcd-server). BENCH_ARGS go to
# scripts/bench/run.sh (e.g. BENCH_ARGS="--concurrency 64 --seconds 10").
BENCH_ARGS ?=
bench: build
	scripts/bench/run.sh --no-build $(BENCH_ARGS)

# The Jepsen-style suite (as root): every nemesis once, JEPSEN_ARGS to scripts/jepsen/run-all.sh
# (default 60 s per run; --short is the 12-15 s pass `make test` runs through jest; --time 300
# for full-length runs). One run: scripts/jepsen/run.sh --nemesis NAME --out DIR (see --help).
JEPSEN_ARGS ?=
jepsen: build tools
	scripts/jepsen/run-all.sh $(JEPSEN_ARGS)

clean:
	rm -rf dist
