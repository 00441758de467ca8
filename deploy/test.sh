#!/usr/bin/env bash
# Installs what is missing and runs every test: the Swift unit tests, then the integration
# tests that start the real binary against real upstreams on 127.0.0.1, then every fuzz target
# briefly (deploy/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
GATEHOUSE_TEST_DEPS=1 deploy/install-deps.sh

echo "== unit tests (swift test)"
swift build --build-tests
swift test --skip-build 2>&1 | tee /tmp/gatehouse-unit.log
unit=${PIPESTATUS[0]}

echo "== integration tests (pytest, real binary)"
swift build --product gatehouse
echo "== policy tests of the quick-start config (gatehouse test)"
.build/debug/gatehouse test --config deploy/examples/quickstart.yaml deploy/examples/policy-tests.yaml
echo "== release build (the Swift runtime linked statically, as the image and the .deb ship it)"
swift build -c release --product gatehouse --static-swift-stdlib --scratch-path .build-release
export GATEHOUSE_RELEASE_BIN="$PWD/.build-release/release/gatehouse"
set +e
cache=$(mktemp -d)
export GATEHOUSE_BIN="$PWD/.build/debug/gatehouse"
first_run="$cache/first-run.log"
python3 -m pytest Tests/integration -q -rfE -o cache_dir="$cache" 2>&1 | tee "$first_run"
integration=${PIPESTATUS[0]}
if [ "$integration" = 1 ]; then
    # Some tests measure timing on a shared 2-core machine; a failure is run once more, on its
    # own, and reported either way: every test that needed the second run is named here, so a
    # flaky test is seen, not hidden. A real bug fails twice.
    echo "== re-running the failed integration tests once; these failed the first time:"
    grep -E '^(FAILED|ERROR) ' "$first_run" | sed 's/^/   needed a retry: /' || true
    python3 -m pytest Tests/integration -q -rfE -o cache_dir="$cache" --last-failed
    integration=$?
fi
rm -rf "$cache"

echo "== fuzz targets (deploy/fuzz.sh 20: every target for 20 s with its seed corpus)"
deploy/fuzz.sh 20
fuzz=$?
set -e
if [ "$unit" != 0 ] || [ "$integration" != 0 ] || [ "$fuzz" != 0 ]; then
    echo "FAILED: unit=$unit integration=$integration fuzz=$fuzz"
    exit 1
fi
