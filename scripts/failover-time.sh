#!/usr/bin/env bash
# failover-time.sh measures how long a local cluster is unavailable for writes
# when its leader dies.
#
# Usage: scripts/failover-time.sh [RUNS]   (default 10)
#
# Each run finds the leader, SIGKILLs it (scripts/cluster.sh kill) and then
# runs `coordctl kv put` (retrying if it fails) until a write succeeds; the
# time from the kill to that first successful write is the run's figure. The killed node is restarted and
# the cluster is ready again before the next run. At the end it prints every
# figure and the median.
#
# It uses the cluster of scripts/cluster.sh and honours the same environment
# (COORD_CLUSTER_DIR, COORD_BASE_PORT, COORD_BIN_DIR, and COORD_* settings for
# coordd such as COORD_ELECTION_TIMEOUT when it starts the nodes). If no node
# is running it starts the cluster (3 nodes unless one of 5 exists), and
# stops it again at the end.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=$REPO_DIR/scripts/cluster.sh
BIN_DIR=${COORD_BIN_DIR:-$REPO_DIR/bin}
[[ $BIN_DIR == /* ]] || BIN_DIR=$PWD/$BIN_DIR
RUNS=${1:-10}
WRITE_DEADLINE=60 # seconds to wait for a write after a kill before giving up

die() {
	echo "failover-time.sh: $*" >&2
	exit 1
}

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "usage: failover-time.sh [RUNS]  (RUNS: a positive number)"

# now_ms prints the wall clock in milliseconds.
now_ms() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then # bash 5: microseconds, as "s.us"
		local us=${EPOCHREALTIME/[.,]/}
		echo $((10#$us / 1000))
	else
		echo $(($(date +%s%N) / 1000000))
	fi
}

# leader prints the leader's node number, waiting up to 30s for one.
leader() {
	local deadline=$((SECONDS + 30)) n
	until n=$("$CLUSTER" leader 2>/dev/null); do
		((SECONDS < deadline)) || die "no leader after 30s: $("$CLUSTER" leader 2>&1)"
		sleep 0.1
	done
	echo "$n"
}

# Start the cluster, or the nodes of it that are down, and wait until all
# are ready. Remember whether it was running, to leave it as it was found.
started=
status=$("$CLUSTER" status 2>/dev/null) || true
if [[ $status != *" alive "* ]]; then
	echo "no running cluster; starting one"
	started=1
fi
"$CLUSTER" start >/dev/null
endpoints=$("$CLUSTER" endpoints)
# Each attempt may take up to 10s: coordctl's client retries with backoff
# until it finds the new leader, as an application's client would, so the
# figure is the outage an application sees.
coordctl() { "$BIN_DIR/coordctl" --endpoints "$endpoints" --timeout 10s "$@"; }

times=()
for ((run = 1; run <= RUNS; run++)); do
	victim=$(leader)
	"$CLUSTER" kill "$victim" >/dev/null
	killed=$(now_ms)
	attempts=0
	until coordctl kv put failover-time "run-$run-$((++attempts))" >/dev/null 2>&1; do
		(($(now_ms) - killed < WRITE_DEADLINE * 1000)) || die "run $run: no successful write within ${WRITE_DEADLINE}s of killing n$victim"
		sleep 0.05
	done
	ms=$(($(now_ms) - killed))
	times+=("$ms")
	printf 'run %2d: killed leader n%s, first successful write after %5d ms (%d attempts)\n' \
		"$run" "$victim" "$ms" "$attempts"
	"$CLUSTER" restart "$victim" >/dev/null
done

mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
mid=$((RUNS / 2))
if ((RUNS % 2)); then
	median=${sorted[mid]}
else
	median=$(((sorted[mid - 1] + sorted[mid]) / 2))
fi
echo "runs: $RUNS  median: $median ms  min: ${sorted[0]} ms  max: ${sorted[RUNS - 1]} ms"

if [[ -n $started ]]; then
	"$CLUSTER" stop >/dev/null
fi
