// Package chaos is coord's chaos and linearizability suite. A run starts a
// real cluster of 3 or 5 coordd processes on loopback, drives concurrent
// client traffic, injects faults on a seeded schedule, heals, and checks
// everything the clients saw. cmd/coordchaos is its command line;
// chaos_test.go holds the `make chaos` test and the negative controls.
//
// Cluster. Each node gets its own data directory and loopback ports from a
// block claimed in [PortRangeLow, PortRangeHigh] (see ports.go). Raft
// traffic goes through one TCP proxy per directed link: node i dials node
// j's Raft address through proxy(i->j), set up with coordd's
// --raft-dial-map. The nemesis cuts links (closing live connections and
// blackholing new ones) and delays them (per direction), so network faults
// need neither Docker nor root. Client gRPC traffic is not proxied: a
// partitioned or deposed leader stays reachable by clients, as in the
// Jepsen analyses of stale reads.
//
// Traffic. Every mutation goes through the client library, so it carries a
// request id (client id, sequence number) that the state machine
// deduplicates, and every written value or event id is unique in the run.
//   - kv: puts and linearizable gets on a few keys, plus "pinned" gets sent
//     straight to one node each, without client-side failover;
//   - lock: acquire with a lease and a wait, read-modify-write of a fenced
//     resource kept by the runner (it refuses tokens older than the newest
//     it has seen), a put fenced by the token on coord itself, release;
//     some holders stall past their lease first, as a paused process would;
//   - log: appends of 1-3 events to a few streams, tail reads.
//
// Faults (one at a time, in a seeded order, each healed before the next):
// kill-leader, kill-node, kill-all (SIGKILL and restart), pause-leader
// (SIGSTOP longer than an election), isolate-leader, deposed-leader (a
// leadership handover the old leader does not hear of, see
// nemesis_deposed.go), partition (majority/minority, the leader on either
// side), latency, snapshot-install (a follower cut off until the leader's
// log no longer holds what it needs). Each fault proves it took effect (a
// new leader in a higher term, a new pid, a snapshot restore counted by the
// follower's metrics, bytes delayed, connections cut); a run with a fault
// that did not is INVALID.
//
// Checks. Outcomes a fault left unknown are resolved from what the cluster
// applied: a write whose unique value (or event id) is seen later happened
// and enters the history with an open end; one never seen is left out, which
// cannot hide or invent a violation. Then:
//   - porcupine: each key is a register; each lock's grants, releases and
//     fenced writes fit a lock with leases and strictly increasing tokens;
//     each stream's appends and reads fit an append-only sequence;
//   - direct invariants: stale reads (a value older than an acknowledged
//     write), writes seen at another revision than acknowledged (applied
//     twice), values nobody wrote, fencing tokens unique and increasing in
//     real time across all locks, fenced writes accepted with a superseded
//     token, lost updates of the fenced resource, acknowledged appends lost
//     or moved, duplicated events, gaps in versions and positions;
//   - cluster: at most one leader per term (status sampled every 50ms), a
//     write succeeds within the recovery bound after each fault heals, no
//     process exits on its own, and after healing every node reaches the
//     same applied index and state hash.
//
// A run that passes keeps only report.json and summary.txt; one that does
// not also keeps history.jsonl, the node logs and data, and porcupine's HTML
// view of every history that is not linearizable.
package chaos
