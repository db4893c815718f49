# pgq — common tasks. `make test` is what CI runs (see .ci/run).

GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
PKGS    := ./...
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: test unit verify generate vet lint bench demo clean fuzz fuzz-brief

## test: check generated code and lint, then run every test with the race detector, and the side-by-side harness's own tests
test: verify unit bench-peers-test fuzz-brief

## unit: run the tests only (race detector on)
unit:
	$(GO) test $(TESTFLAGS) $(PKGS)

## verify: fail if sqlc output is stale, go vet or staticcheck complain, or code is unformatted
verify: vet lint
	$(TOOL) sqlc diff
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

## generate: regenerate db/ from queries/ and migrations/ with the pinned sqlc
generate:
	$(TOOL) sqlc generate

vet:
	$(GO) vet $(PKGS)

lint:
	$(TOOL) staticcheck $(PKGS)

## bench: benchmarks on a private PostgreSQL with default durability (figures: docs/performance.md)
bench:
	PGQ_TEST_DURABLE=1 $(GO) test -run '^$$' -bench . -benchtime 5x ./queue/...
	PGQ_TEST_DURABLE=1 $(GO) test -run '^$$' -bench . ./worker/...

## fuzz: run each fuzz target for FUZZTIME (`make test` runs their seed corpora only); crashers land in testdata/fuzz
FUZZTIME ?= 10s
FUZZ_TARGETS := ./queue:FuzzValidateName ./queue:FuzzPrepareRaw ./worker:FuzzDecodeArgs \
	./periodic:FuzzParse ./periodic:FuzzEvery ./cmd/pgq/cli:FuzzEnqueueInput ./cmd/pgq/cli:FuzzParseAutoscale \
	./internal/schema:FuzzCheckRewrite ./queue:FuzzParseRate ./dashboard:FuzzJobsParams
## fuzz-brief: every fuzz target for 2 s (part of `make test`, so CI explores a little past the seed corpora)
fuzz-brief:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2s

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## demo: throwaway PostgreSQL, migrations, some jobs, inspection
demo:
	$(GO) run ./cmd/pgq demo

.PHONY: bench-peers bench-peers-test

## bench-peers: pgq side by side with River, Graphile Worker and pg-boss on one private PostgreSQL (≤ 15 min at default sizes); writes the table into docs/performance.md
bench-peers:
	cd bench && GOFLAGS=-mod=mod $(GO) run . -write-docs ../docs/performance.md

## bench-peers-test: vet, lint and test the side-by-side harness (bench/ is a module of its own, which `make verify` and `make unit` do not reach).
## -mod=mod: when pgq gains a dependency, bench/go.sum takes its checksums from the module proxy instead of failing the build.
bench-peers-test:
	cd bench && export GOFLAGS=-mod=mod && $(GO) vet ./... && $(GO) tool -modfile=../tools/go.mod staticcheck ./... && $(GO) test -count=1 ./...

.PHONY: soak

## soak: the long fault suite (50,000 jobs, 4 worker processes, kills, terminated connections, PostgreSQL restarts, poison jobs; docs/reliability.md). `make test` runs its short version.
soak:
	PGQ_SOAK=1 $(GO) test -count=1 -timeout 60m -run '^TestChaos$$' -v ./tests/
