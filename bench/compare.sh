#!/usr/bin/env bash
# compare.sh runs coord and etcd side by side on this machine (`make
# bench-compare`): it installs Debian's etcd-server when etcd is missing,
# starts a 3-member etcd cluster and a 3-node coord cluster on loopback, both
# with their data in one temporary directory and both fsyncing every commit,
# runs bench/cmd/benchcompare against them (put, lock, contended lock and
# linearizable read rows at 1, 16, 64 and 256 clients), prints the table and
# writes it into docs/PERFORMANCE.md, with the machine's description and
# the command. It takes about 8 minutes. Everything it started is stopped
# when it exits, also on failure or Ctrl-C.
#
# Environment:
#   BENCH_COORD_BASE_PORT  coord's base port (default 17000: ports 17001-17203)
#   BENCH_ETCD_BASE_PORT   etcd's base port (default 18000: client ports
#                          18001-18003, peer ports 18101-18103)
#   BENCH_ARGS             benchcompare flags (default "--repeat 3 --duration 3s
#                          --warmup 0.5s": every row three times per system,
#                          alternating, median shown; e.g. "--only put,read");
#                          see go run ./cmd/benchcompare -h
#   BENCH_DOC              the document to write (default docs/PERFORMANCE.md;
#                          empty: do not write one)
#   BENCH_KEEP             set to keep the temporary directory (logs, results)
set -euo pipefail

PROG=compare.sh
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COORD_BASE=${BENCH_COORD_BASE_PORT:-17000}
ETCD_BASE=${BENCH_ETCD_BASE_PORT:-18000}
DOC=${BENCH_DOC-$REPO_DIR/docs/PERFORMANCE.md}

die() {
	echo "$PROG: $*" >&2
	exit 1
}

log() { echo "$PROG: $*" >&2; }

# ensure_etcd installs Debian's etcd-server (etcd 3.4) when etcd is missing.
ensure_etcd() {
	command -v etcd >/dev/null && return 0
	log "etcd not found; installing Debian's etcd-server"
	local sudo=()
	[[ $(id -u) == 0 ]] || sudo=(sudo -n)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2
	command -v etcd >/dev/null || die "etcd is still missing after installing etcd-server"
}

# port_in_use succeeds when something accepts TCP connections on port $1.
port_in_use() { { true; } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1"; }

# http_ok succeeds when GET http://127.0.0.1:$1$2 answers 200.
http_ok() {
	local line=
	{
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		read -r -t 2 line <&3
	} 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	[[ $line == *" 200 "* ]]
}

TMP=
ETCD_PIDS=()

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $TMP ]]; then
		COORD_BASE_PORT=$COORD_BASE COORD_CLUSTER_DIR=$TMP/coord COORD_BIN_DIR=$TMP/bin \
			"$REPO_DIR/scripts/cluster.sh" stop >/dev/null 2>&1 || true
	fi
	local pid
	for pid in ${ETCD_PIDS[@]+"${ETCD_PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in ${ETCD_PIDS[@]+"${ETCD_PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
	if [[ -n $TMP ]]; then
		if [[ -n ${BENCH_KEEP:-} || $status != 0 ]]; then
			log "logs and results kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$status"
}

start_etcd() {
	local i cluster=
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=http://127.0.0.1:$((ETCD_BASE + 100 + i))"
	done
	for i in 1 2 3; do
		etcd --name "e$i" --data-dir "$TMP/etcd/e$i" \
			--listen-client-urls "http://127.0.0.1:$((ETCD_BASE + i))" \
			--advertise-client-urls "http://127.0.0.1:$((ETCD_BASE + i))" \
			--listen-peer-urls "http://127.0.0.1:$((ETCD_BASE + 100 + i))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_BASE + 100 + i))" \
			--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token coord-bench \
			</dev/null >"$TMP/etcd/e$i.log" 2>&1 &
		ETCD_PIDS+=("$!")
	done
	local deadline=$((SECONDS + 30))
	for i in 1 2 3; do
		until http_ok "$((ETCD_BASE + i))" /health; do
			((SECONDS < deadline)) || die "etcd member e$i is not healthy after 30s; see $TMP/etcd/e$i.log"
			sleep 0.2
		done
	done
	log "etcd cluster ready on ports $((ETCD_BASE + 1))-$((ETCD_BASE + 3))"
}

main() {
	ensure_etcd
	local i port
	for i in 1 2 3; do
		for port in $((ETCD_BASE + i)) $((ETCD_BASE + 100 + i)) $((COORD_BASE + i)) $((COORD_BASE + 100 + i)) $((COORD_BASE + 200 + i)); do
			! port_in_use "$port" || die "port $port is in use (set BENCH_COORD_BASE_PORT or BENCH_ETCD_BASE_PORT)"
		done
	done
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/coord-bench.XXXXXX")
	trap cleanup EXIT INT TERM
	mkdir -p "$TMP/etcd" "$TMP/bin"

	log "building coordd, coordctl and benchcompare"
	(cd "$REPO_DIR" && go build -o "$TMP/bin/" ./cmd/coordd ./cmd/coordctl)
	(cd "$REPO_DIR/bench" && go build -o "$TMP/bin/" ./cmd/benchcompare)

	start_etcd
	COORD_BASE_PORT=$COORD_BASE COORD_CLUSTER_DIR=$TMP/coord COORD_BIN_DIR=$TMP/bin \
		"$REPO_DIR/scripts/cluster.sh" start 3 >/dev/null
	log "coord cluster ready on ports $((COORD_BASE + 1))-$((COORD_BASE + 3))"

	local coord_eps="127.0.0.1:$((COORD_BASE + 1)),127.0.0.1:$((COORD_BASE + 2)),127.0.0.1:$((COORD_BASE + 3))"
	local etcd_eps="127.0.0.1:$((ETCD_BASE + 1)),127.0.0.1:$((ETCD_BASE + 2)),127.0.0.1:$((ETCD_BASE + 3))"
	local args=(--coord-endpoints "$coord_eps" --etcd-endpoints "$etcd_eps" --data-dir "$TMP" --json "$TMP/results.json")
	local bench_args=${BENCH_ARGS-"--repeat 3 --duration 3s --warmup 0.5s"}
	# shellcheck disable=SC2206 # a list of flags
	args+=($bench_args)
	if [[ -n $DOC ]]; then
		local cmdline="make bench-compare"
		[[ -z ${BENCH_ARGS+set} ]] || cmdline+=" BENCH_ARGS=\"$BENCH_ARGS\""
		args+=(--doc "$DOC" --command "$cmdline")
	fi
	(cd "$REPO_DIR" && "$TMP/bin/benchcompare" "${args[@]}")
	[[ -z $DOC ]] || log "table written to $DOC"
}

main "$@"
