# AnalyticsPro: `make run` starts everything; `make test` runs the test suite.
# Both install the Debian packages they need when run as root.

SWIFT ?= swift
CONFIG ?= debug
BIN := .build/$(CONFIG)/analyticspro

# C libraries the package links (Cairo, Pango, libcurl), the fonts reports use (DejaVu:
# Latin, Greek, Cyrillic), the PostgreSQL server the embedded cluster and the tests run,
# and the tools the tests check PDFs with (qpdf, poppler-utils).
DEB_PACKAGES := pkg-config libcairo2-dev libpango1.0-dev fonts-dejavu-core libcurl4-openssl-dev postgresql curl \
	qpdf poppler-utils

.PHONY: all deps build run test bench-queue clean

all: build

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing" >&2; exit 1; \
		fi; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG)

run: build
	$(BIN) run

# Serial: run in parallel, the database-restart test (which kills and restarts a
# PostgreSQL) now and then stalls other tests. That test used to hang after the restart
# (a query postgres-nio loses on a connection that closed under it, now bounded: see
# docs/architecture.md "Known issues"); it still runs on its own, bounded by a timeout,
# up to eight times, as a guard (a passing run takes 3-50 s).
test: deps
	$(SWIFT) test --no-parallel --skip DatabaseRestartTests
	@for attempt in 1 2 3 4 5 6 7 8; do \
		timeout 90 $(SWIFT) test --filter DatabaseRestartTests && exit 0; \
		echo "DatabaseRestartTests: attempt $$attempt failed or hung" >&2; \
		pkill -9 -f "[a]nalyticsproPackageTests.xctest" 2>/dev/null; \
		pkill -9 -f "[p]ostgres -D /tmp/aptest-restart-" 2>/dev/null; \
	done; exit 1

clean:
	rm -rf .build
