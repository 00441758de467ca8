#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/Targets and runs each for SECONDS (default 60) with its
# seed corpus (Fuzz/corpus/TARGET). See docs/security.md, "Fuzzing".
#
#   deploy/fuzz.sh [SECONDS] [TARGET...]     e.g. deploy/fuzz.sh 20, deploy/fuzz.sh 600 path
#   (SECONDS 0 builds and links the targets without running them)
#
# Everything it makes lives in .build-fuzz (git-ignored) and is reused by the next run:
# - the library modules, built by SwiftPM with coverage instrumentation and AddressSanitizer
#   (`-sanitize=fuzzer,address`; only library targets, so nothing is linked there);
# - one executable per target, bin/fuzz-TARGET, linked with swiftc from the target's file,
#   Fuzz/Support and the modules' objects, and relinked only when one of those changed;
# - fuzz/corpus/TARGET: the inputs libFuzzer found (the repository's seeds are read, never
#   written), fuzz/artifacts/TARGET: crashes, fuzz/logs/TARGET.log (or $FUZZ_LOG_DIR).
# The first run that finds a crash, a timeout or a leak stops with its reproducer and a non-zero
# exit. Each target file can name a source it needs (`// fuzz-requires: PATH`): without it the
# target is skipped, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
shift || true
scratch=$root/.build-fuzz
logs=${FUZZ_LOG_DIR:-$scratch/fuzz/logs}
mkdir -p "$scratch/bin" "$logs"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for file in Fuzz/Targets/*.swift; do targets+=("$(basename "$file" .swift)"); done
fi

echo "== fuzz: building the library modules (coverage + AddressSanitizer, .build-fuzz)"
build=(swift build --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address)
if ! "${build[@]}" --target GatehouseServer > "$scratch/build.log" 2>&1; then
    tail -40 "$scratch/build.log"
    echo "FAILED: the fuzz build (log: $scratch/build.log)"
    exit 1
fi
bin=$("${build[@]}" --show-bin-path)

# Every library module's objects (not the executable's, the tests' or build tools'): linked
# into each target, so a target may call into any module.
objects=()
for dir in "$bin"/*.build; do
    case $(basename "$dir") in
        gatehouse.build | gatehouse[A-Z]*.build | *Tests.build | *-tool.build | generate_*.build | ArgumentParser*.build) continue ;;
    esac
    while IFS= read -r -d '' object; do objects+=("$object"); done < <(find "$dir" -name '*.o' -print0)
done
# The C modules' maps, as SwiftPM passed them when it compiled the modules.
module_maps=()
while IFS= read -r map; do module_maps+=(-Xcc "$map"); done < <(
    grep -o -- '-fmodule-map-file=[^"]*' "$scratch/debug.yaml" | sort -u)
# The libraries Package.swift names in linkerSettings (the module maps' `link` lines come by
# autolinking).
libraries=(-lhiredis -levent -ldl)
stamp=$scratch/bin/objects.list
printf '%s\n' "${objects[@]}" | sort > "$stamp.new"
cmp -s "$stamp.new" "$stamp" 2>/dev/null && rm "$stamp.new" || mv "$stamp.new" "$stamp"

link() {  # link TARGET: bin/fuzz-TARGET, unless it is newer than everything it is made of
    local target=$1 exe=$scratch/bin/fuzz-$1
    if [ -x "$exe" ] && [ -z "$(find Fuzz/Targets/"$target".swift Fuzz/Support "$stamp" "${objects[@]}" -newer "$exe" -print -quit)" ]; then
        return 0
    fi
    echo "== fuzz: linking fuzz-$target"
    rm -f "$exe.tmp"
    swiftc -sanitize=fuzzer,address -parse-as-library -g -module-name "Fuzz_$target" \
        -I "$bin/Modules" "${module_maps[@]}" \
        Fuzz/Support/*.swift "Fuzz/Targets/$target.swift" "${objects[@]}" "${libraries[@]}" -o "$exe.tmp" 2>&1 |
        grep -v "Cannot export local symbol" || true
    [ -x "$exe.tmp" ] || { echo "FAILED: linking fuzz-$target"; exit 1; }
    mv "$exe.tmp" "$exe"
}

# Per target: the timeout for one input and the memory limit (libFuzzer options). The config
# loader gets a short timeout: a YAML bomb must show up as one (SPEC §3.2 Config files).
options() {
    case $1 in
        config) echo "-timeout=2 -rss_limit_mb=1024" ;;
        *) echo "-timeout=10 -rss_limit_mb=2048" ;;
    esac
}

# Swift's own crash backtracer would race ASan's report; libFuzzer prints the stack.
export SWIFT_BACKTRACE=enable=no
export FUZZ_AUTH_FIXTURE=$root/Tests/GatehouseAuthTests/Fixtures/tokens.json
export FUZZ_CONFIG_FIXTURES=$root/Tests/GatehouseConfigTests/Golden
export FUZZ_TMPDIR=$scratch/fuzz/tmp   # the config target's scratch directories
rm -rf "$FUZZ_TMPDIR" && mkdir -p "$FUZZ_TMPDIR"
# A small quarantine keeps the RSS of a long run low. Leak detection is off (-detect_leaks=0):
# Swift packs enum tags into the spare bits of pointers, which LeakSanitizer cannot follow, so
# it reports objects held by globals as leaked; growth still shows up through -rss_limit_mb.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:quarantine_size_mb=32:malloc_context_size=20}

summary=()
for target in "${targets[@]}"; do
    file=Fuzz/Targets/$target.swift
    [ -f "$file" ] || { echo "FAILED: no fuzz target $target ($file)"; exit 1; }
    required=$(sed -n 's|^// fuzz-requires: *||p' "$file")
    if [ -n "$required" ] && [ ! -e "$required" ]; then
        summary+=("fuzz $target: skipped ($required is not in this tree)")
        continue
    fi
    link "$target"
    if [ "$seconds" = 0 ]; then
        summary+=("fuzz $target: built, not run")
        continue
    fi
    corpus=$scratch/fuzz/corpus/$target artifacts=$scratch/fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts" "Fuzz/corpus/$target"
    dict=()
    [ -f "Fuzz/dict/$target.dict" ] && dict=(-dict="Fuzz/dict/$target.dict")
    log=$logs/$target.log
    echo "== fuzz: $target for ${seconds}s (log: $log)"
    set +e
    # shellcheck disable=SC2046
    "$scratch/bin/fuzz-$target" -max_total_time="$seconds" $(options "$target") -print_final_stats=1 -detect_leaks=0 \
        -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" "Fuzz/corpus/$target" > "$log" 2>&1
    status=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    coverage=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
    if [ "$status" != 0 ]; then
        echo "FAILED: fuzz target $target found a problem (exit $status); the end of its log:"
        grep -v '^#[0-9]' "$log" | tail -60
        reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1 || true)
        if [ -n "$reproducer" ] && [ -f "$reproducer" ]; then
            echo "reproducer: $reproducer ($(wc -c < "$reproducer") bytes), hex:"
            od -An -tx1 -v "$reproducer" | tr -d ' \n' | head -c 4096; echo
            echo "run it again: FUZZ_AUTH_FIXTURE=$FUZZ_AUTH_FIXTURE FUZZ_CONFIG_FIXTURES=$FUZZ_CONFIG_FIXTURES $scratch/bin/fuzz-$target $reproducer"
        fi
        exit 1
    fi
    summary+=("fuzz $target: ok, ${runs:-?} runs in ${seconds}s, ${coverage:-no coverage line}, corpus $(ls "$corpus" | wc -l) found + $(ls "Fuzz/corpus/$target" | wc -l) seeds")
done
printf '%s\n' "${summary[@]}"
