// Package kv is coord's key-value register: the simplest primitive in the
// replicated state machine, used as a test target and for small values.
//
// Semantics:
//   - Every write is stamped with its log index: mod_revision; the write that
//     created the key gives create_revision; version counts writes since
//     creation. Revisions strictly increase across all keys.
//   - A put or delete may be conditional on the key's mod_revision (0 means
//     "absent"); a failed condition changes nothing and reports the current key.
//   - A key with a TTL expires at (write time + TTL) in state-machine time. An
//     expired key counts as absent as soon as its expiry has passed (lazy
//     expiry); Tick deletes expired keys in expiry order.
package kv
