# tidepool: see README.md. `make demo` runs the whole autoscaling loop on this
# machine; `make test` runs every test (installing Prometheus/Alertmanager first).
GO        ?= go
BIN       := bin/tidepool
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
TERRAFORM_VERSION   := v1.5.7
export CGO_ENABLED := 0

.PHONY: all build test test-short demo lint bench deps deps-browser clean

all: build

build:
	$(GO) build -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/tidepool

deps:
	./scripts/install-deps.sh

deps-browser:
	./scripts/install-deps.sh --browser

test: deps deps-browser $(GOBIN)/terraform
	$(GO) test -count=1 -timeout 45m ./...

test-short:
	$(GO) test -short -count=1 ./...

demo: build deps
	./$(BIN) demo $(DEMO_FLAGS)

bench: build
	./scripts/install-deps.sh --bench
	./$(BIN) bench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

$(GOBIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GOBIN)/terraform:
	GOFLAGS=-buildvcs=false $(GO) install github.com/hashicorp/terraform@$(TERRAFORM_VERSION)

lint: $(GOBIN)/staticcheck $(GOBIN)/terraform
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...
	$(GOBIN)/terraform fmt -check -recursive -diff deploy/terraform

clean:
	rm -rf bin
