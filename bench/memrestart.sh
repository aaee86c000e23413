#!/usr/bin/env bash
# memrestart.sh measures coord's memory per million keys, events and held
# locks, and its restart time with them (`make bench-memory`): it starts a
# 3-node cluster in a temporary directory, runs bench/cmd/memrestart against
# it (load, measure RSS via /proc, restart, measure time to ready, restart
# as after a machine crash) and writes the results into
# docs/PERFORMANCE.md. The cluster is stopped and deleted when it exits.
#
# Environment:
#   BENCH_COORD_BASE_PORT  the cluster's base port (default 17000)
#   BENCH_N                keys, events and locks to load, each (default 1000000)
#   BENCH_DOC              the document to write (default docs/PERFORMANCE.md;
#                          empty: do not write one)
#   BENCH_KEEP             set to keep the temporary directory
set -euo pipefail

PROG=memrestart.sh
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${BENCH_COORD_BASE_PORT:-17000}
N=${BENCH_N:-1000000}
DOC=${BENCH_DOC-$REPO_DIR/docs/PERFORMANCE.md}
TMP=

log() { echo "$PROG: $*" >&2; }

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $TMP ]]; then
		COORD_BASE_PORT=$BASE COORD_CLUSTER_DIR=$TMP/coord COORD_BIN_DIR=$TMP/bin \
			"$REPO_DIR/scripts/cluster.sh" stop >/dev/null 2>&1 || true
		if [[ -n ${BENCH_KEEP:-} || $status != 0 ]]; then
			log "data and logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$status"
}

main() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/coord-mem.XXXXXX")
	trap cleanup EXIT INT TERM
	mkdir -p "$TMP/bin"
	log "building coordd, coordctl and memrestart"
	(cd "$REPO_DIR" && go build -o "$TMP/bin/" ./cmd/coordd ./cmd/coordctl)
	(cd "$REPO_DIR/bench" && go build -o "$TMP/bin/" ./cmd/memrestart)
	COORD_BASE_PORT=$BASE COORD_CLUSTER_DIR=$TMP/coord COORD_BIN_DIR=$TMP/bin \
		"$REPO_DIR/scripts/cluster.sh" start 3 >/dev/null
	local args=(--repo "$REPO_DIR" --cluster-dir "$TMP/coord" --bin-dir "$TMP/bin" --base-port "$BASE" --n "$N")
	if [[ -n $DOC ]]; then
		local cmdline="make bench-memory"
		[[ $N == 1000000 ]] || cmdline+=" BENCH_N=$N"
		args+=(--doc "$DOC" --command "$cmdline")
	fi
	"$TMP/bin/memrestart" "${args[@]}"
}

main "$@"
