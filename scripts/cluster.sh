#!/usr/bin/env bash
# cluster.sh runs a local coord cluster: 3 or 5 coordd processes on loopback.
#
# Usage: scripts/cluster.sh COMMAND [ARGS]
#
#   start [3|5]     build bin/coordd and bin/coordctl if needed, start every node
#                   that is not running and wait until all are ready (default 3)
#   stop            SIGTERM every node, SIGKILL the ones still running after 10s
#   status          pid and state of each node, then `coordctl cluster status`
#   kill I          SIGKILL node I
#   restart I       stop node I if it runs, start it again, wait until it is ready
#   pause I         SIGSTOP node I (it stays a member but stops answering)
#   resume I        SIGCONT node I
#   logs I [-f]     print (or follow) node I's log
#   leader          print the number I of the current leader (for scripts)
#   endpoints       print the gRPC endpoints, comma separated (for COORD_ENDPOINTS)
#   clean           stop, then delete the cluster's data and logs
#
# Node I has id nI and listens on 127.0.0.1 ports BASE+I (gRPC), BASE+100+I
# (Raft) and BASE+200+I (HTTP: /healthz, /readyz, /metrics). Every node is
# started with --bootstrap and the same --initial-cluster; coordd ignores
# --bootstrap once its data dir holds state, so a restart reuses the flags.
#
# Environment:
#   COORD_BASE_PORT     BASE above (default 7000); remembered by the cluster
#   COORD_CLUSTER_DIR   where nodes keep data, logs and pid files
#                       (default <repo>/.cluster; node I uses <dir>/nI/)
#   COORD_BIN_DIR       where coordd and coordctl live (default <repo>/bin, rebuilt
#                       when older than a .go file; a COORD_BIN_DIR is used as is
#                       and built only when a binary is missing)
#   COORD_WAIT_TIMEOUT  seconds to wait for nodes to become ready (default 30)
#   COORD_*             other coordd settings (e.g. COORD_LOG_LEVEL=debug,
#                       COORD_ELECTION_TIMEOUT=500ms) pass through to the nodes
set -euo pipefail

PROG=cluster.sh
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${COORD_CLUSTER_DIR:-$REPO_DIR/.cluster}
[[ $CLUSTER_DIR == /* ]] || CLUSTER_DIR=$PWD/$CLUSTER_DIR
BIN_DIR=${COORD_BIN_DIR:-$REPO_DIR/bin}
[[ $BIN_DIR == /* ]] || BIN_DIR=$PWD/$BIN_DIR
WAIT_TIMEOUT=${COORD_WAIT_TIMEOUT:-30}
STOP_TIMEOUT=10
CONF_FILE=$CLUSTER_DIR/cluster.conf
DEFAULT_BASE_PORT=7000

SIZE=   # number of nodes, from CONF_FILE
BASE=   # base port, from CONF_FILE

die() {
	echo "$PROG: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------------------
# Cluster configuration

# load_conf reads SIZE and BASE from the cluster directory. It returns 1 when
# no cluster was ever started there.
load_conf() {
	[[ -f $CONF_FILE ]] || return 1
	local key value
	while IFS='=' read -r key value; do
		case $key in
		size) SIZE=$value ;;
		base_port) BASE=$value ;;
		esac
	done <"$CONF_FILE"
	[[ $SIZE =~ ^[35]$ && $BASE =~ ^[0-9]+$ ]] ||
		die "$CONF_FILE is damaged; remove the cluster with '$PROG clean'"
	if [[ -n ${COORD_BASE_PORT:-} && $COORD_BASE_PORT != "$BASE" ]]; then
		die "the cluster in $CLUSTER_DIR uses base port $BASE, not COORD_BASE_PORT=$COORD_BASE_PORT (unset it, or '$PROG clean' first)"
	fi
}

require_cluster() {
	load_conf || die "no cluster in $CLUSTER_DIR (start one with: $PROG start)"
}

# new_conf records a new cluster of $1 nodes.
new_conf() {
	SIZE=$1
	BASE=${COORD_BASE_PORT:-$DEFAULT_BASE_PORT}
	[[ $SIZE =~ ^[35]$ ]] || die "bad cluster size '$SIZE': want 3 or 5"
	if ! [[ $BASE =~ ^[1-9][0-9]*$ ]] || ((BASE < 1024 || BASE + 300 > 65535)); then
		die "bad COORD_BASE_PORT '$BASE': want a number from 1024 to 65235"
	fi
	mkdir -p "$CLUSTER_DIR"
	printf 'size=%s\nbase_port=%s\n' "$SIZE" "$BASE" >"$CONF_FILE"
}

# node_arg checks that $1 names a node of the loaded cluster.
node_arg() {
	[[ ${1:-} =~ ^[1-9][0-9]*$ ]] || die "bad node number '${1:-}': want 1-$SIZE"
	(($1 <= SIZE)) || die "no node $1: the cluster has $SIZE nodes (1-$SIZE)"
}

grpc_addr() { echo "127.0.0.1:$((BASE + $1))"; }
raft_addr() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
http_port() { echo "$((BASE + 200 + $1))"; }
node_dir() { echo "$CLUSTER_DIR/n$1"; }

# initial_cluster prints the --initial-cluster value: n1=raft1,n2=raft2,...
initial_cluster() {
	local i out=
	for ((i = 1; i <= SIZE; i++)); do
		out+="${out:+,}n$i=$(raft_addr "$i")"
	done
	echo "$out"
}

all_endpoints() {
	local i out=
	for ((i = 1; i <= SIZE; i++)); do
		out+="${out:+,}$(grpc_addr "$i")"
	done
	echo "$out"
}

# ---------------------------------------------------------------------------
# Processes

# proc_state prints the one-letter state of process $1 (R, S, T, Z, ...) and
# fails when there is no such process.
proc_state() {
	local stat
	if [[ -d /proc/self ]]; then
		stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
		stat=${stat##*) } # the command name may hold spaces; the state follows ") "
		echo "${stat%% *}"
	else
		ps -o stat= -p "$1" | cut -c1
	fi
}

# proc_args prints the command line of process $1.
proc_args() {
	if [[ -d /proc/self ]]; then
		tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"
	else
		ps -o args= -p "$1"
	fi
}

# node_pid prints the pid of node $1 if its coordd process exists, running or
# paused. A zombie counts as gone, and so does an unrelated process that
# reused the pid.
node_pid() {
	local pidfile pid state
	pidfile=$(node_dir "$1")/coordd.pid
	[[ -f $pidfile ]] && read -r pid <"$pidfile" && [[ $pid =~ ^[0-9]+$ ]] || return 1
	state=$(proc_state "$pid") && [[ -n $state && $state != Z ]] || return 1
	[[ "$(proc_args "$pid") " == *coordd*"--id n$1 "* ]] || return 1
	echo "$pid"
}

# node_state prints alive, paused, dead (killed or crashed) or stopped.
node_state() {
	local pid
	if pid=$(node_pid "$1"); then
		case $(proc_state "$pid") in
		T | t) echo paused ;;
		*) echo alive ;;
		esac
	elif [[ -f $(node_dir "$1")/coordd.pid ]]; then
		echo dead
	else
		echo stopped
	fi
}

# wait_gone waits until node $1's process has exited; it fails after $2 seconds.
wait_gone() {
	local deadline=$((SECONDS + $2))
	while node_pid "$1" >/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# http_status prints the HTTP status code of GET http://127.0.0.1:$1$2, or 000
# when nothing answers within 2s. It uses bash's /dev/tcp so that curl is not
# needed. A paused node accepts the connection but never replies, hence the
# read timeout.
http_status() {
	local line=
	{
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		read -r -t 2 line <&3
	} 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || true
	line=${line#HTTP/* }
	line=${line%% *}
	[[ $line =~ ^[0-9]{3}$ ]] || line=000
	echo "$line"
}

# port_in_use succeeds when something accepts TCP connections on port $1.
port_in_use() {
	{ true; } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1"
}

# ---------------------------------------------------------------------------
# Binaries

# ensure_binaries builds coordd and coordctl into BIN_DIR when one is missing
# or, for the default BIN_DIR, older than a Go source file of the repository.
ensure_binaries() {
	local need=
	if [[ ! -x $BIN_DIR/coordd || ! -x $BIN_DIR/coordctl ]]; then
		need=missing
	elif [[ -z ${COORD_BIN_DIR:-} ]]; then
		local oldest=$BIN_DIR/coordd
		[[ $BIN_DIR/coordctl -ot $oldest ]] && oldest=$BIN_DIR/coordctl
		if [[ -n $(find "$REPO_DIR" \( -name .git -o -name .cluster -o -name bin \) -prune -o \
			\( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$oldest" -print 2>/dev/null | head -n 1) ]]; then
			need=stale
		fi
	fi
	[[ -n $need ]] || return 0

	command -v go >/dev/null || die "go is not on PATH; it is needed to build coordd and coordctl"
	local version
	version=$(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null) || version=dev
	echo "$PROG: building coordd and coordctl ($version) into $BIN_DIR" >&2
	mkdir -p "$BIN_DIR"
	(cd "$REPO_DIR" && go build -ldflags "-X main.version=$version" -o "$BIN_DIR/" ./cmd/coordd ./cmd/coordctl) ||
		die "go build failed"
}

# ctl runs coordctl against the nodes that can answer (alive, not paused).
ctl() {
	local i eps=
	for ((i = 1; i <= SIZE; i++)); do
		[[ $(node_state "$i") == alive ]] && eps+="${eps:+,}$(grpc_addr "$i")"
	done
	[[ -n $eps ]] || {
		echo "$PROG: no node is running" >&2
		return 1
	}
	"$BIN_DIR/coordctl" --endpoints "$eps" "$@"
}

# ---------------------------------------------------------------------------
# Nodes

# start_node starts node $1 in the background with its log appended to
# <dir>/nI/coordd.log. nohup keeps it alive when the terminal goes away.
start_node() {
	local i=$1 dir
	dir=$(node_dir "$i")
	mkdir -p "$dir/data"
	echo "=== $PROG: starting n$i at $(date '+%Y-%m-%d %H:%M:%S') ===" >>"$dir/coordd.log"
	nohup "$BIN_DIR/coordd" \
		--id "n$i" \
		--data-dir "$dir/data" \
		--raft-addr "$(raft_addr "$i")" \
		--grpc-addr "$(grpc_addr "$i")" \
		--http-addr "127.0.0.1:$(http_port "$i")" \
		--bootstrap \
		--initial-cluster "$(initial_cluster)" \
		</dev/null >>"$dir/coordd.log" 2>&1 &
	local pid=$! state deadline=$((SECONDS + 5))
	echo "$pid" >"$dir/coordd.pid"
	# Until the background child has exec'd coordd, its command line is this
	# script's and node_pid does not recognise it: wait for the exec (or exit).
	until node_pid "$i" >/dev/null; do
		state=$(proc_state "$pid") && [[ $state != Z ]] || return 0 # exited: wait_ready reports it
		((SECONDS < deadline)) || return 0
		sleep 0.02
	done
}

# check_ports fails when a port of one of the given nodes is taken.
check_ports() {
	local i port
	for i in "$@"; do
		for port in "$((BASE + i))" "$((BASE + 100 + i))" "$((BASE + 200 + i))"; do
			! port_in_use "$port" ||
				die "port $port (for n$i) is already in use; is another cluster running? (set COORD_BASE_PORT to use other ports)"
		done
	done
}

# stop_nodes sends SIGTERM to the given nodes, waits up to STOP_TIMEOUT
# seconds for them to exit and SIGKILLs the rest.
stop_nodes() {
	local i pid stopping=()
	for i in "$@"; do
		if ! pid=$(node_pid "$i"); then
			rm -f "$(node_dir "$i")/coordd.pid" # it was dead already
			continue
		fi
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true # a paused node acts on SIGTERM only once resumed
		stopping+=("$i")
	done
	for i in ${stopping[@]+"${stopping[@]}"}; do
		if ! wait_gone "$i" "$STOP_TIMEOUT"; then
			echo "$PROG: n$i did not exit within ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL" >&2
			if pid=$(node_pid "$i"); then
				kill -KILL "$pid" 2>/dev/null || true
			fi
			wait_gone "$i" 5 || die "n$i (pid $pid) survived SIGKILL"
		fi
		rm -f "$(node_dir "$i")/coordd.pid"
		echo "n$i stopped"
	done
}

# wait_ready waits until every given node answers 200 on /readyz: it is a
# member, knows a leader and has caught up. It fails as soon as one of the
# nodes exits, or after WAIT_TIMEOUT seconds.
wait_ready() {
	local deadline=$((SECONDS + WAIT_TIMEOUT)) i pending
	while :; do
		pending=
		for i in "$@"; do
			if ! node_pid "$i" >/dev/null; then
				tail -n 20 "$(node_dir "$i")/coordd.log" >&2 || true
				die "n$i exited while starting; its last log lines are above (all of them: $PROG logs $i)"
			fi
			[[ $(http_status "$(http_port "$i")" /readyz) == 200 ]] || pending+=" n$i"
		done
		[[ -n $pending ]] || return 0
		((SECONDS < deadline)) ||
			die "timed out after ${WAIT_TIMEOUT}s waiting for$pending to become ready (see: $PROG logs I, $PROG status)"
		sleep 0.2
	done
}

# find_leader prints the number of the leader node. It fails, with a reason
# on stderr, when the cluster reports no leader or when the leader it reports
# is not running (a follower may name a dead leader until it notices).
find_leader() {
	local json head id
	json=$(ctl --timeout 5s -o json cluster status) || return 1
	json=$(tr -d ' \t\r\n' <<<"$json")
	# protojson writes fields in .proto order (cluster_id, leader_id, members),
	# so the cluster-wide leader_id is the one before "members".
	head=${json%%\"members\":*}
	if ! [[ $head =~ \"leader_id\":\"([^\"]+)\" ]]; then
		echo "$PROG: the cluster has no leader (an election may be in progress)" >&2
		return 1
	fi
	id=${BASH_REMATCH[1]}
	if ! [[ $id =~ ^n([1-9][0-9]*)$ ]] || ((BASH_REMATCH[1] > SIZE)); then
		echo "$PROG: the leader is $id, which is not a node of this cluster" >&2
		return 1
	fi
	if [[ $(node_state "${BASH_REMATCH[1]}") != alive ]]; then
		echo "$PROG: the cluster names $id as leader, but $id is $(node_state "${BASH_REMATCH[1]}") (an election may be in progress)" >&2
		return 1
	fi
	echo "${BASH_REMATCH[1]}"
}

# ---------------------------------------------------------------------------
# Commands

cmd_start() {
	(($# <= 1)) || die "usage: $PROG start [3|5]"
	if load_conf; then
		[[ -z ${1:-} || $1 == "$SIZE" ]] ||
			die "the cluster in $CLUSTER_DIR has $SIZE nodes; run '$PROG clean' before starting one of $1"
	else
		new_conf "${1:-3}"
	fi
	ensure_binaries

	local i all=() down=()
	for ((i = 1; i <= SIZE; i++)); do
		all+=("$i")
		case $(node_state "$i") in
		alive) ;;
		paused) die "n$i is paused; resume it first ($PROG resume $i)" ;;
		*) down+=("$i") ;;
		esac
	done
	if ((${#down[@]} > 0)); then
		check_ports "${down[@]}"
		for i in "${down[@]}"; do start_node "$i"; done
	fi
	wait_ready "${all[@]}"
	print_banner
}

print_banner() {
	local ctlbin=$BIN_DIR/coordctl leader i
	[[ $ctlbin == "$PWD"/* ]] && ctlbin=${ctlbin#"$PWD"/}
	leader=$(find_leader 2>/dev/null) && leader=n$leader || leader=unknown
	echo "coord cluster of $SIZE nodes is ready (leader: $leader), data in $CLUSTER_DIR"
	for ((i = 1; i <= SIZE; i++)); do
		printf '  n%s  grpc %s  raft %s  http http://127.0.0.1:%s\n' \
			"$i" "$(grpc_addr "$i")" "$(raft_addr "$i")" "$(http_port "$i")"
	done
	cat <<EOF

Talk to it:
  export COORD_ENDPOINTS=$(all_endpoints)
  $ctlbin cluster status
  $ctlbin kv put greeting hello && $ctlbin kv get greeting
Break it:
  $0 kill \$($0 leader)
Stop it:
  $0 stop     (or '$0 clean' to delete its data too)
EOF
}

cmd_stop() {
	if ! load_conf; then
		echo "no cluster in $CLUSTER_DIR"
		return 0
	fi
	local i all=()
	for ((i = 1; i <= SIZE; i++)); do all+=("$i"); done
	stop_nodes "${all[@]}"
}

cmd_status() {
	(($# == 0)) || die "usage: $PROG status"
	require_cluster
	local i pid state live=0
	printf '%-4s %-8s %-8s %-16s %-16s %s\n' NODE PID STATE GRPC RAFT HTTP
	for ((i = 1; i <= SIZE; i++)); do
		pid=$(node_pid "$i") || pid=-
		state=$(node_state "$i")
		[[ $state == alive ]] && live=$((live + 1))
		printf '%-4s %-8s %-8s %-16s %-16s %s\n' "n$i" "$pid" "$state" \
			"$(grpc_addr "$i")" "$(raft_addr "$i")" "127.0.0.1:$(http_port "$i")"
	done
	echo
	((live > 0)) || {
		echo "no node is running"
		return 0
	}
	ctl cluster status
}

cmd_kill() {
	(($# == 1)) || die "usage: $PROG kill I"
	require_cluster
	node_arg "$1"
	local pid
	pid=$(node_pid "$1") || die "n$1 is not running"
	kill -KILL "$pid"
	wait_gone "$1" 5 || die "n$1 (pid $pid) survived SIGKILL"
	echo "n$1 killed (pid $pid)"
}

cmd_restart() {
	(($# == 1)) || die "usage: $PROG restart I"
	require_cluster
	node_arg "$1"
	ensure_binaries
	stop_nodes "$1"
	check_ports "$1"
	start_node "$1"
	wait_ready "$1"
	echo "n$1 restarted and ready"
}

cmd_pause() {
	(($# == 1)) || die "usage: $PROG pause I"
	require_cluster
	node_arg "$1"
	[[ $(node_state "$1") == alive ]] || die "n$1 is $(node_state "$1"), not alive"
	kill -STOP "$(node_pid "$1")"
	echo "n$1 paused"
}

cmd_resume() {
	(($# == 1)) || die "usage: $PROG resume I"
	require_cluster
	node_arg "$1"
	[[ $(node_state "$1") == paused ]] || die "n$1 is $(node_state "$1"), not paused"
	kill -CONT "$(node_pid "$1")"
	echo "n$1 resumed"
}

cmd_logs() {
	local node='' follow=''
	while (($#)); do
		case $1 in
		-f | --follow) follow=1 ;;
		*) [[ -z $node ]] || die "usage: $PROG logs I [-f]"; node=$1 ;;
		esac
		shift
	done
	[[ -n $node ]] || die "usage: $PROG logs I [-f]"
	require_cluster
	node_arg "$node"
	local log
	log=$(node_dir "$node")/coordd.log
	[[ -f $log ]] || die "n$node has no log yet ($log)"
	if [[ -n $follow ]]; then
		exec tail -n +1 -f "$log"
	fi
	cat "$log"
}

cmd_leader() {
	(($# == 0)) || die "usage: $PROG leader"
	require_cluster
	find_leader || exit 1
}

cmd_endpoints() {
	(($# == 0)) || die "usage: $PROG endpoints"
	require_cluster
	all_endpoints
}

cmd_clean() {
	(($# == 0)) || die "usage: $PROG clean"
	if load_conf; then
		cmd_stop
	fi
	# Remove only what this script creates, in case COORD_CLUSTER_DIR points
	# somewhere shared.
	rm -rf "$CLUSTER_DIR"/n[0-9]* "$CONF_FILE"
	rmdir "$CLUSTER_DIR" 2>/dev/null || true
	echo "removed the cluster in $CLUSTER_DIR"
}

main() {
	(($# > 0)) || {
		usage >&2
		exit 2
	}
	local cmd=$1
	shift
	case $cmd in
	stop)
		(($# == 0)) || die "usage: $PROG stop"
		cmd_stop
		;;
	start | status | kill | restart | pause | resume | logs | leader | endpoints | clean)
		"cmd_$cmd" "$@"
		;;
	help | -h | --help) usage ;;
	*) die "unknown command '$cmd' (try: $PROG help)" ;;
	esac
}

main "$@"
