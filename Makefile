# The two commands: `make run` and `make test`. Everything they need is
# installed by scripts/deps.sh when missing.

DATA      ?= .data
PGPORT    ?= 54329
ADDR      ?= localhost:8080
BIN       := bin/agentdesk

.PHONY: run test build ui deps clean-data

run: deps build
	@scripts/run.sh "$(BIN)" "$(DATA)" "$(PGPORT)" "$(ADDR)"

test: deps-test ui
	@scripts/test.sh

build: ui
	go build -o $(BIN) ./cmd/agentdesk

ui:
	@if [ -f web/ui/package.json ]; then cd web/ui && npm run --silent build; fi

deps:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

# clean-data removes only make run's cluster: $(DATA)/testpg belongs to the
# test helper (pgtest), which may be serving a `go test` at this moment.
clean-data:
	scripts/pg.sh stop $(DATA)/pg; rm -rf "$$(readlink -f $(DATA)/pg)" $(DATA)/pg
