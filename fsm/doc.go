// Package fsm is coord's replicated state machine: a raft.BatchingFSM whose
// state lives in one bbolt file (state.db).
//
// The FSM is a router plus bookkeeping. For each committed log entry it
//
//  1. skips the entry if its index is at or below the applied index stored in
//     state.db (replay after a restart is a no-op);
//  2. decodes the command envelope (format byte + protobuf); an entry it cannot
//     decode, or one naming an unknown machine or operation, halts the node,
//     naming the index, because a replica that skips an entry has diverged;
//  3. sets the state-machine clock: Now = max(previous Now, leader_time), so
//     time never runs backwards across leaders with skewed clocks;
//  4. deduplicates: a command carrying (client id, seq) that was applied before
//     returns the stored result and changes nothing;
//  5. dispatches to the machine (package sm's contract), stores the result for
//     retries, and finally writes the meta record (applied index, term, Now).
//
// A whole batch of entries is applied in one bbolt write transaction, so the
// state and the applied index always commit together.
//
// Snapshots are a logical, versioned dump of every bucket taken from a bbolt
// read transaction; Restore builds a fresh database file from a dump and swaps
// it in, discarding all previous state.
//
// Deduplication memory is bounded: a client tells the FSM (acked_below) which
// results it will never ask for again; at most MaxResultsPerSession results
// are kept per client; a client idle for SessionTTL of state-machine time is
// forgotten by the Tick that finds it due.
package fsm
