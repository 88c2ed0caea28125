# The one command surface. `make help` lists the targets.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
PROTO_OUT := services/common/src
COMPOSE_FILE := compose/compose.yaml

.PHONY: help sync proto proto-check lint test test-fast bench bench-storage up down logs base-images images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

sync: ## install every service and the development tools into .venv (uv workspace)
	$(UV) sync --frozen

proto: ## generate the Python stubs from proto/ into the shared library (committed; CI checks drift)
	$(RUN) python -m grpc_tools.protoc -I proto \
		--python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
		$$(cd proto && find acoustack -name '*.proto' | sort)
	@touch $(PROTO_OUT)/acoustack/v1/__init__.py

proto-check: proto ## fail when the committed stubs differ from what proto/ generates
	@git diff --exit-code --stat -- $(PROTO_OUT)/acoustack/v1 \
		|| { echo "generated stubs are stale: run 'make proto' and commit the result"; exit 1; }

lint: ## ruff, buf lint, and the stub drift check
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	cd proto && ../.venv/bin/buf lint
	$(MAKE) --no-print-directory proto-check

test: sync ## run every test (needs Postgres and RabbitMQ; see README)
	$(RUN) pytest

bench: bench-storage ## every benchmark

bench-storage: sync ## storage benchmark against acoupi 0.6.0 (prints nine lines)
	$(RUN) python bench/storage/run.py
