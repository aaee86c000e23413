// Package client is the Go client of a coord cluster.
//
// A Client is created once per process with New and shared by every
// goroutine; it keeps one gRPC connection per node address and is safe for
// concurrent use.
//
// # Leader discovery
//
// New asks the configured endpoints for the member list (ClusterService
// ListMembers) and returns as soon as one answers, so endpoints that are
// down do not prevent start-up. From the answer the client learns every
// member's gRPC address and the current leader. Writes and linearizable
// reads go to the leader. The client changes its mind about the leader when
//
//   - a node answers NOT_LEADER naming the leader's address: the call is
//     retried there at once;
//   - the leader fails or times out: the client forgets it and asks every
//     known node for the member list again (one shared discovery for all
//     concurrent calls); while no leader is known, calls rotate through the
//     known endpoints, which forward requests to the leader themselves.
//
// Stale reads (the Stale option) go to the first endpoint that works,
// starting with the first configured one, and move on to the next endpoint
// when it fails.
//
// # Retries
//
// Every call runs within the caller's context; each attempt is further
// bounded by Config.AttemptTimeout. After a transient failure (NOT_LEADER
// without a usable address, NO_LEADER, NOT_APPLIED, OUTCOME_UNKNOWN, a gRPC
// Unavailable transport error, a timed-out attempt) the client waits a
// random delay drawn uniformly from [0, min(MaxBackoff, BaseBackoff*2^n)]
// ("full jitter") and tries again. Errors that another attempt cannot fix
// (InvalidArgument, NotFound, FailedPrecondition, AlreadyExists,
// ResourceExhausted, PermissionDenied, Unimplemented and other non-transient
// codes) are returned at once as an *Error. When the context ends first,
// the error wraps ctx.Err() (and ErrDeadline for a passed deadline) and the
// last attempt's error.
//
// # Exactly-once writes
//
// Each Client is a session with a random non-zero 64-bit id. Every mutating
// call takes the session's next sequence number and sends it with every
// attempt in gRPC metadata (coord-client-id, coord-seq), together with
// coord-acked: the lowest sequence number still in flight, below which every
// call has completed and will never be sent again, so the server may forget
// those results. The state machine applies a (client id, sequence number) at
// most once and answers a retry with the first result; together with the
// client's retries this makes a write take effect exactly once as long as
// the call returns success.
//
// The guarantee has limits:
//
//   - If the call gives up (its context ends or the Client is closed) after
//     an attempt that may have reached the leader, the write may or may not
//     have been applied; the error matches ErrOutcomeUnknown. Errors that
//     prove the request never entered the log (NOT_LEADER, NO_LEADER,
//     NOT_APPLIED) do not count, so a call that only ever met those does
//     not match ErrOutcomeUnknown.
//   - Deduplication lives in the session: a new Client (or a restarted
//     process) has a new id, and retrying an earlier write through it may
//     apply the write twice.
//   - The server remembers results for a bounded time and number of
//     requests; a retry delayed beyond that is not recognised.
//   - Membership changes and leadership transfers are not state-machine
//     commands; retrying them after an unknown outcome repeats them (adding
//     an existing voter is harmless, a second transfer moves leadership
//     again).
//
// # Errors
//
// Failures from the server are *Error values carrying the gRPC code, the
// coord reason (google.rpc.ErrorInfo in domain "coord") and the leader the
// server named. Test them with errors.Is against the sentinels (ErrNotLeader,
// ErrInvalidArgument, ...) or reach the fields with errors.As. Domain
// outcomes, such as a conditional put whose revision did not match or an
// absent key, are fields of the response, not errors.
package client
