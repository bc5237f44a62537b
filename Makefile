# firstline — one Makefile for both environments. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON311 ?= $(shell for p in python3.11 $$HOME/.pyenv/versions/3.11*/bin/python3.11 /usr/bin/python3.11 /usr/local/bin/python3.11; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null && echo $$p && break; done)
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && echo $$p && break; done)

APP := .venv/bin
BOT := .venv-bot/bin
DATA_DIR ?= $(or $(FIRSTLINE_DATA_DIR),$(CURDIR)/data)
MODEL := models/firstline.tar.gz
BOT_SOURCES := config.yml $(shell find bot -name '*.yml' -o -name '*.py' 2>/dev/null)
KB_SOURCES := $(shell find content -type f 2>/dev/null)
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export FIRSTLINE_DATA_DIR := $(DATA_DIR)

.PHONY: help install run serve test test-app test-bot bench lint clean

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(APP)/.installed: pyproject.toml
	@test -n "$(PYTHON311)" || { echo "Python 3.11 not found; set PYTHON311=/path/to/python3.11"; exit 1; }
	test -x $(APP)/python || $(PYTHON311) -m venv .venv
	$(APP)/pip install --quiet --upgrade pip
	$(APP)/pip install --quiet -e '.[test]'
	touch $@

$(BOT)/.installed: bot/requirements.txt
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found (Rasa 3.6 needs 3.8-3.10); set PYTHON310=..."; exit 1; }
	test -x $(BOT)/python || $(PYTHON310) -m venv .venv-bot
	$(BOT)/pip install --quiet --upgrade pip
	$(BOT)/pip install --quiet -r bot/requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(APP)/.installed $(BOT)/.installed node_modules/.installed ## Create both environments and fetch front-end libraries

$(MODEL): $(BOT)/.installed $(BOT_SOURCES)
	$(BOT)/rasa train --domain bot/domain --data bot/data --config config.yml --out models --fixed-model-name firstline
	touch $@

model: $(MODEL) ## Train the Rasa model (only when its data changed)

$(DATA_DIR)/.demo-kb: $(APP)/.installed $(KB_SOURCES)
	$(APP)/firstline kb import content/kb
	$(APP)/firstline kb tune content/eval --split validation
	touch $@

kb: $(DATA_DIR)/.demo-kb ## Import the demo knowledge base, build and tune its index

run: install model kb ## Run the whole system on embedded defaults (Ctrl-C stops it)
	$(APP)/firstline up

serve: install kb ## Run only the firstline service
	$(APP)/firstline serve

test: install model test-app test-bot ## Run every test suite in both environments

test-app:
	$(APP)/pytest tests --ignore=tests/actions

test-bot:
	$(BOT)/pytest tests/actions
	$(BOT)/rasa test --stories tests/bot --nlu tests/bot/nlu_holdout.yml --domain bot/domain --model $(MODEL) --fail-on-prediction-errors --out results

bench: install model kb ## Print the benchmark tables
	$(APP)/python -m benchmarks

lint: $(APP)/.installed ## ruff and mypy
	$(APP)/ruff check firstline kb_index handoff actions bot tests benchmarks
	$(APP)/ruff format --check firstline kb_index handoff actions bot tests benchmarks
	$(APP)/mypy

clean: ## Delete the environments, models and data (your articles and handoffs too)
	rm -rf .venv .venv-bot node_modules models data results
