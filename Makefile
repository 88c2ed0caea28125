# The one command surface. `make help` lists the targets.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
PROTO_OUT := services/common/src
COMPOSE_FILE := compose/compose.yaml

.PHONY: help tools test-servers sync proto proto-check lint test test-fast bench bench-storage up down logs base-images images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

tools: ## install uv when it is missing (the one tool the workspace needs to start)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv

sync: tools ## install every service and the development tools into .venv (uv workspace)
	$(UV) sync --frozen

proto: ## generate the Python stubs from proto/ into the shared library (committed; CI checks drift)
	$(RUN) python -m grpc_tools.protoc -I proto \
		--python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
		$$(cd proto && find acoustack -name '*.proto' | sort)
	@touch $(PROTO_OUT)/acoustack/v1/__init__.py

proto-check: proto ## fail when the committed stubs differ from what proto/ generates
	@git diff --exit-code --stat -- $(PROTO_OUT)/acoustack/v1 \
		|| { echo "generated stubs are stale: run 'make proto' and commit the result"; exit 1; }

lint: sync ## ruff, buf lint, and the stub drift check
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	cd proto && ../.venv/bin/buf lint
	$(MAKE) --no-print-directory proto-check

test-servers: ## start (or install) the Postgres and RabbitMQ the tests talk to
	bash scripts/ensure-test-servers.sh

test: sync test-servers ## run every test against real Postgres, RabbitMQ and Docker
	$(RUN) pytest

bench: bench-storage ## every benchmark

bench-storage: sync ## storage benchmark against acoupi 0.6.0 (prints nine lines)
	$(RUN) python bench/storage/run.py
