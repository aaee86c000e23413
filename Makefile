# Makefile for coord. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go

# Version stamped into the binaries (coordd --version, coordctl version).
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Where `go install` puts tools: GOBIN, else the first GOPATH entry's bin.
# Recipes call tools from here, so it need not be on PATH.
TOOLBIN := $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)

# Pinned tool versions. The generated code records the protoc-gen-go and
# protoc-gen-go-grpc versions, so `proto-check` needs exactly these.
TOOLS := \
	google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 \
	github.com/bufbuild/buf/cmd/buf@v1.75.0 \
	honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Directories holding generated protobuf code.
GENERATED := api internal/cmdpb

.PHONY: help build test proto proto-check lint tools cluster cluster-stop clean bench-compare bench-memory

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/coordd and bin/coordctl
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/coordd ./cmd/coordctl

test: ## run all tests, including the system tests (real coordd processes)
	$(GO) test -race -count=1 -timeout 20m ./...

proto: ## regenerate the Go code from the .proto files (buf + local plugins)
	PATH="$(TOOLBIN):$$PATH" "$(TOOLBIN)/buf" generate

proto-check: proto ## fail if the committed generated code is not what `make proto` makes
	@if ! git diff --exit-code --stat -- $(GENERATED); then \
		echo "proto-check: generated code differs from what is committed; run 'make proto' and commit" >&2; \
		exit 1; \
	fi
	@untracked="$$(git ls-files --others --exclude-standard -- $(GENERATED))"; \
	if [ -n "$$untracked" ]; then \
		echo "proto-check: generated files not committed:" >&2; \
		echo "$$untracked" >&2; \
		exit 1; \
	fi
	@echo "proto-check: generated code is up to date"

lint: ## gofmt, go vet, staticcheck, buf lint (and shellcheck when installed)
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (gofmt -w):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	$(GO) vet ./...
	"$(TOOLBIN)/staticcheck" ./...
	"$(TOOLBIN)/buf" lint
	@if command -v shellcheck >/dev/null; then \
		echo shellcheck scripts/*.sh .ci/run; shellcheck scripts/*.sh .ci/run; \
	else \
		echo "shellcheck not installed; skipping the shell scripts"; \
	fi

tools: ## install the pinned tools into GOBIN or GOPATH/bin (those missing or at another version)
	@for t in $(TOOLS); do \
		pkg="$${t%@*}"; ver="$${t#*@}"; bin="$(TOOLBIN)/$${pkg##*/}"; \
		have="$$( [ -x "$$bin" ] && $(GO) version -m "$$bin" 2>/dev/null | awk '$$1 == "mod" {print $$3}' || true)"; \
		if [ "$$have" = "$$ver" ]; then \
			echo "$${pkg##*/} $$ver already installed"; \
		else \
			echo "installing $$t"; \
			GOBIN="$(TOOLBIN)" $(GO) install "$$t"; \
		fi; \
	done

bench-compare: ## coord vs etcd on this machine (installs etcd-server if missing); writes docs/PERFORMANCE.md
	bench/compare.sh

.PHONY: chaos chaos-bugs soak
CHAOS_OUT ?= $(CURDIR)/chaos-results
DURATION ?= 30m
chaos: ## chaos suite: real 3- and 5-node clusters, every fault, histories checked (a few minutes; CI runs it)
	COORD_CHAOS_OUT=$(CHAOS_OUT) $(GO) test -count=1 -timeout 30m -run 'TestChaos$$' -v ./chaos
chaos-bugs: ## negative controls: coordd built with each seeded bug must be caught; writes the detection matrix
	COORD_CHAOS_BUGS=1 COORD_CHAOS_OUT=$(CHAOS_OUT) $(GO) test -count=1 -timeout 90m -run TestSeededBugsAreCaught -v ./chaos
soak: ## seeded chaos runs back to back for DURATION (default 30m), 3 and 5 nodes, every fault
	$(GO) run ./cmd/coordchaos --soak $(DURATION) --nodes 3,5 --duration 3m --faults all --out $(CHAOS_OUT)/soak

bench-memory: ## memory per 1M keys/events/held locks and restart time with them; writes docs/PERFORMANCE.md
	bench/memrestart.sh

cluster: ## start a local 3-node cluster (scripts/cluster.sh start 3)
	scripts/cluster.sh start 3

cluster-stop: ## stop the local cluster (its data stays in .cluster/)
	scripts/cluster.sh stop

clean: ## stop and delete the local cluster, remove bin/
	scripts/cluster.sh clean
	rm -rf bin
