// Package eventlog is coord's event log: named, append-only streams of
// events, with optimistic concurrency, idempotent appends, retention and
// durable consumer cursors.
//
// Streams and events. A stream is a named, append-only sequence of events.
// An event has a client-given id, a type, data and metadata; when appended
// it gets
//   - a version: its number within the stream, 0, 1, 2, ... without gaps;
//   - a global position: its number across all streams, 0, 1, 2, ...
//     without gaps, in the order the appends were applied;
//   - a time: the state-machine time of the append (env.Now).
//
// Positions are taken from a replicated counter, so every replica assigns
// the same ones; a reader that knows the position after the last event it
// processed can continue at any replica that has applied that far, without
// skipping or repeating an event. Events of one stream have increasing
// positions and non-decreasing times.
//
// Appends. An append writes 1 to MaxEventsPerAppend events to one stream in
// one log entry: all or nothing. It is checked in this order:
//  1. invalid input (limits, ids repeated within the append) is rejected
//     (InvalidArgument);
//  2. an append to a deleted stream is rejected (FailedPrecondition);
//  3. ids: when every event's id is stored in the stream, the append is a
//     no-op whose result (DUPLICATE) carries the stored events' versions and
//     positions, whatever the expected version; when some ids are stored and
//     others are not, it is rejected (FailedPrecondition);
//  4. the expected version (any, no-stream, exists, exact N) is checked;
//     a mismatch writes nothing and its result (WRONG_EXPECTED_VERSION)
//     carries the stream's actual last version;
//  5. the events are written at the next versions and positions.
//
// "Exists" means at least one event was ever appended to the stream, even if
// retention removed it since; "exact N" means the last appended event has
// version N.
//
// Retention is opt-in per stream: max_count keeps the newest events,
// max_age removes events older than it in state-machine time, and
// truncate_before removes versions below it (it only rises). Deleting a
// stream removes all its events; its record stays, marked deleted, so its
// name is never reused and versions are never handed out twice. Retention
// and deletion act on readers at once (an event they remove is not
// returned by any read) and on storage lazily: Tick removes the events in
// bounded batches, oldest first. Nothing is ever renumbered: a removed
// event's position is absent from the log of all streams, and a stream's
// versions start at its first kept one. Duplicate detection covers the
// events a stream still stores: an id whose event was removed may be
// appended again.
//
// Cursors are named positions committed through the log; the machine
// stores them and gives them no further meaning.
//
// Invariants:
//   - a stream stores exactly the versions [first_version, next_version);
//     each has one event record (keyed by position) and one id record;
//   - the next position is one more than the highest position ever
//     assigned, and positions are assigned in apply order;
//   - a stream with stored events that retention must remove has a
//     retention timer due no later than the moment they must go; a stream
//     has at most one timer (its record names it);
//   - every key that encodes a number is fixed-width big-endian, so
//     iteration order is numeric order on every replica.
package eventlog
