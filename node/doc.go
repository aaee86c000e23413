// Package node wires coord's replicated state machine to hashicorp/raft: the
// log and stable store (raft-boltdb), the snapshot store, the transport,
// bootstrap and membership, leader time stamping, linearizable reads and the
// leader's tick loop.
//
// Writes: Apply stamps the leader's clock into the command (the one place
// wall time enters the state machine), encodes it, refuses it above
// MaxCommandBytes and proposes it. Raft's errors are classified: a command
// that certainly did not enter the log returns ErrNotLeader, ErrNoLeader or
// ErrNotApplied (safe to retry anywhere); one whose fate is unknown returns
// ErrOutcomeUnknown (retry only with the same request id, which the state
// machine deduplicates).
//
// Reads: ReadBarrier implements Raft's read-index protocol. The leader notes
// its commit index, confirms with a quorum that it is still the leader (one
// confirmation round serves every read that arrived before it started), and
// waits until the state machine has applied that index. A new leader serves
// reads only after its first Barrier, which guarantees it has committed an
// entry of its own term.
//
// Time: the leader proposes a Tick when the state machine reports due work
// (expiries, deadlines, collection). A new leader starts ticking only after
// its Barrier, so leases are judged against the replicated clock and a
// failover never expires them early; the extra delay before an expiry takes
// effect is bounded by the election timeout plus the tick interval.
//
// Restart: state.db keeps its applied index in the same transaction as the
// state, so Raft is configured not to restore the latest snapshot on start;
// the node restores it itself only when state.db is behind it (for example
// after state.db was lost).
package node
