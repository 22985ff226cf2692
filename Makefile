# The two commands of the quick start: `make run` serves, `make test` tests.
# Both first install what a fresh Debian machine with Swift lacks (Lua 5.4's headers).

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test-deps browser-deps run test test-browser bench bench-http bench-http-floor

deps:
	@pkg-config --exists lua5.4 2>/dev/null || { \
		echo "installing liblua5.4-dev"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq liblua5.4-dev pkg-config; }

# What the tests use beyond the build: luacheck and luac (the hook tools' lint tests).
test-deps: deps
	@{ command -v luacheck && command -v luac5.4; } >/dev/null || { \
		echo "installing lua-check and lua5.4"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq lua-check lua5.4; }

# The dashboard's browser test: Debian's Chromium, its driver and Selenium (for Debian's python3).
BROWSER_PYTHON := /usr/bin/python3

browser-deps:
	@{ command -v chromium && command -v chromedriver && $(BROWSER_PYTHON) -c "import selenium"; } >/dev/null 2>&1 || { \
		echo "installing chromium, chromium-driver and python3-selenium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver python3-selenium; }

run: deps
	swift run moonbase serve --host 127.0.0.1 --port 8090 --data ./moonbase_data --hooks-dir ./hooks

# Suites named ...TimingTests assert time bounds: they run on their own, after the others.
# Both run beside a throwaway PostgreSQL cluster (scripts/with-postgres.sh starts it, exports
# MOONBASE_TEST_POSTGRES_URL, and always stops it), which the PostgreSQL engine's tests need.
test: test-deps browser-deps
	scripts/with-postgres.sh sh -c 'swift test --skip TimingTests && swift test --filter TimingTests'
	$(MAKE) --no-print-directory test-browser

# The dashboard in headless Chromium: it fails, never skips, when it cannot run. Screenshots go
# to .build/browser-test/ (DASHBOARD_SCREENSHOT=path to choose).
test-browser: deps browser-deps
	swift build --product moonbase
	$(BROWSER_PYTHON) Tests/Browser/dashboard_test.py

# Hook dispatch against the C floor (release build).
bench: deps
	swift run -c release moonbase-bench

# Create throughput and latency over HTTP with and without hooks, beside the build before the
# redesign, with the checks and the goals (release builds, wrk; older commits are built once, in
# .build/benchmark-builds). A shorter run: make bench-http BENCH_ARGS="2 32 2".
bench-http: deps
	bash Benchmarks/http-load.sh $(BENCH_ARGS)

# The same with the floor cases: events stored only (serve --no-hook-delivery), and delivered from
# memory by commit 24819d6. Figures and their analysis: Benchmarks/RESULTS.md.
bench-http-floor: deps
	bash Benchmarks/http-load.sh 4 32 6 floor
