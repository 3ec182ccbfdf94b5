# Fledge build and test entry points. `make test` is the whole suite: lint,
# unit and end-to-end tests with the race detector, every Go benchmark run
# briefly (so none rots), and short fuzz runs.

GO           ?= go
STATICCHECK  ?= $(shell $(GO) env GOPATH)/bin/staticcheck
# staticcheck 2026.2.2: the module proxy knows its releases by their v0 versions.
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME     ?= 5s

.PHONY: build test lint unit benchsmoke fuzz node-deps system-deps tools bench clean

build:
	$(GO) build -o bin/fledge ./cmd/fledge

# The Flagsmith Node SDK, pinned by bench/node/package-lock.json, is a real
# client in the end-to-end tests and the engine comparison; dynalite, pinned
# there too, is the DynamoDB the identity/dynamo tests run against.
node-deps:
	@test -d bench/node/node_modules/flagsmith-nodejs -a -d bench/node/node_modules/dynalite || npm ci --prefix bench/node --no-audit --no-fund

# Debian packages the tests drive; they start their own servers. .ci/run
# installs them; elsewhere this stops with the one line to run.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then echo "install Debian packages first: apt-get install -y$$missing"; exit 1; fi

tools:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit: system-deps node-deps build
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Alloc' ./engine

# 100 iterations each: proves the benchmarks still run, measures nothing.
benchsmoke:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime=100x ./...

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz

test: lint unit benchsmoke fuzz

bench: node-deps
	bash bench/engine-compare

clean:
	rm -rf bin
