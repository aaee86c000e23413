// Package sm is the contract between the replicated state machine (package
// fsm) and the primitives that live in it (kv, locks, eventlog, ...).
//
// A primitive is a Machine: a pure function of (stored records, command,
// Env). It reads and writes only through the Tx it is handed, never reads the
// wall clock, randomness, the network or node-local configuration, and keeps
// no state between calls. The fsm package runs every Machine inside one
// storage transaction per batch of log entries, so a Machine's writes commit
// together with the applied index.
//
// Invariants a Machine must keep:
//   - Apply with the same stored state, op, body and Env returns the same
//     result and makes the same writes, on every replica and every run.
//   - Apply that returns a *Rejection has written nothing.
//   - Any other error from Apply or Tick means the stored state or the log
//     entry is corrupt; the node halts rather than diverge.
//   - Iteration is in key order; keys encoding numbers use fixed-width
//     big-endian so byte order equals numeric order.
package sm
