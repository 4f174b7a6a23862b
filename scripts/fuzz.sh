#!/usr/bin/env bash
# Runs every fuzz target of the module for a short, bounded time: CI's
# guard that no parser of outside data panics or breaks its properties on
# inputs beyond the committed corpora. Targets are discovered with
# `go test -list`, so a new Fuzz* function is fuzzed without touching this
# script.
#
#   scripts/fuzz.sh                 every target, FUZZTIME (default 2s) each
#   FUZZTIME=1m scripts/fuzz.sh     longer, for a local hunt
#
# A failure stops the script at once and prints the failing input, which
# go test has written under the package's testdata/fuzz/<Target>/: fix the
# code, and commit that file as a regression case (plain `go test` runs
# every file there).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-2s}"

# `go test -list` prints a package's matching names, then "ok <pkg> <time>".
targets=$(go test -list '^Fuzz' ./... | awk '
  /^Fuzz/ { names[n++] = $1; next }
  /^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }
')
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

# fuzz runs one target; its output goes to the file $3.
fuzz() {
  go test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" "$1" </dev/null >"$3" 2>&1
}

# deadlineRace tells Go 1.26's fuzzing coordinator race (go.dev/issue/75804,
# fixed in Go 1.27): when -fuzztime runs out while a worker is mid-input, the
# target fails with a bare "context deadline exceeded" and writes no input.
# Anything else (an input written, a panic, a failed check) is real.
deadlineRace() {
  grep -q 'context deadline exceeded' "$1" &&
    ! grep -q -e 'Failing input written' -e 'panic:' -e 'failure while testing seed corpus' -e '_test.go:[0-9]' "$1"
}

start=$SECONDS
count=0
while read -r pkg name; do
  t0=$SECONDS
  log=$(mktemp)
  status=0
  fuzz "$pkg" "$name" "$log" || status=$?
  if [ "$status" -ne 0 ] && deadlineRace "$log"; then
    echo "fuzz.sh: $pkg $name hit Go's fuzztime deadline race (go.dev/issue/75804); running it again" >&2
    status=0
    fuzz "$pkg" "$name" "$log" || status=$?
  fi
  if [ "$status" -ne 0 ]; then
    cat "$log"
    echo >&2
    echo "fuzz.sh: $pkg $name failed" >&2
    dir=$(go list -f '{{.Dir}}' "$pkg")
    dir=${dir#"$PWD"/}
    # A new input: "Failing input written to testdata/fuzz/<Target>/<hash>";
    # a committed one or a seed: "failure while testing seed corpus entry:
    # <Target>/<hash>" (or <Target>/seed#N for an f.Add seed).
    input=$(grep -o 'testdata/fuzz/[^[:space:]]*' "$log" | head -n 1 || true)
    if [ -z "$input" ]; then
      entry=$(sed -n 's/^failure while testing seed corpus entry: //p' "$log" | head -n 1)
      if [ -n "$entry" ] && [ -f "$dir/testdata/fuzz/$entry" ]; then
        input="testdata/fuzz/$entry"
      elif [ -n "$entry" ]; then
        echo "fuzz.sh: failing input: the f.Add seed $entry" >&2
      fi
    fi
    rm -f "$log"
    if [ -n "$input" ]; then
      echo "fuzz.sh: failing input: $dir/$input" >&2
      echo "fuzz.sh: reproduce with: go test -run '^${name}/$(basename "$input")\$' ./$dir" >&2
    fi
    exit 1
  fi
  rm -f "$log"
  count=$((count + 1))
  echo "ok    $pkg $name ($((SECONDS - t0))s)"
done <<<"$targets"
echo "fuzzed $count targets for $FUZZTIME each in $((SECONDS - start))s"
