package coordv1

// ErrorDomain is the google.rpc.ErrorInfo domain of every coord error detail.
const ErrorDomain = "coord"

// Reasons carried in google.rpc.ErrorInfo details (see common.proto).
const (
	// ReasonNotLeader: the node is not the leader; not applied.
	ReasonNotLeader = "NOT_LEADER"
	// ReasonNoLeader: no leader is known; not applied.
	ReasonNoLeader = "NO_LEADER"
	// ReasonNotApplied: refused before entering the log; not applied.
	ReasonNotApplied = "NOT_APPLIED"
	// ReasonOutcomeUnknown: the request may or may not have been applied.
	ReasonOutcomeUnknown = "OUTCOME_UNKNOWN"
	// ReasonDeadline: the caller's deadline passed; a write's outcome is unknown.
	ReasonDeadline = "DEADLINE"
	// ReasonFenced: a fence the request carried does not hold; not applied.
	ReasonFenced = "FENCED"
)

// ErrorInfo metadata keys.
const (
	// MetaLeaderID names the leader's node id.
	MetaLeaderID = "leader_id"
	// MetaLeaderAddress is the leader's gRPC address.
	MetaLeaderAddress = "leader_address"
)

// gRPC metadata keys that carry a request id (see common.proto).
const (
	// HeaderClientID is the client session id, a non-zero decimal uint64.
	HeaderClientID = "coord-client-id"
	// HeaderSeq is the request's sequence number within the session.
	HeaderSeq = "coord-seq"
	// HeaderAcked tells the server every sequence number below it has completed.
	HeaderAcked = "coord-acked"
	// HeaderForwarded marks a request a follower forwarded to the leader.
	HeaderForwarded = "coord-forwarded"
)
