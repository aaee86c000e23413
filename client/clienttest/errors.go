package clienttest

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
)

// ReasonError builds a gRPC status error carrying a google.rpc.ErrorInfo in
// domain "coord" with the given reason and metadata, as coordd sends them.
func ReasonError(code codes.Code, reason, msg string, md map[string]string) error {
	st := status.New(code, msg)
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Domain:   coordv1.ErrorDomain,
		Reason:   reason,
		Metadata: md,
	})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// NotLeaderError is coordd's NOT_LEADER error naming the leader (either may
// be empty when unknown).
func NotLeaderError(leaderID, leaderAddr string) error {
	md := map[string]string{}
	if leaderID != "" {
		md[coordv1.MetaLeaderID] = leaderID
	}
	if leaderAddr != "" {
		md[coordv1.MetaLeaderAddress] = leaderAddr
	}
	return ReasonError(codes.Unavailable, coordv1.ReasonNotLeader, "not the leader", md)
}

// NoLeaderError is coordd's NO_LEADER error.
func NoLeaderError() error {
	return ReasonError(codes.Unavailable, coordv1.ReasonNoLeader, "no leader", nil)
}

// NotAppliedError is coordd's NOT_APPLIED error.
func NotAppliedError() error {
	return ReasonError(codes.Unavailable, coordv1.ReasonNotApplied, "not applied", nil)
}

// OutcomeUnknownError is coordd's OUTCOME_UNKNOWN error.
func OutcomeUnknownError() error {
	return ReasonError(codes.Unavailable, coordv1.ReasonOutcomeUnknown, "leadership lost before commit", nil)
}

// afterApply marks a hook error to be returned after the default behaviour
// ran (see AfterApply).
type afterApply struct{ err error }

func (a afterApply) Error() string { return a.err.Error() }
func (a afterApply) Unwrap() error { return a.err }

// AfterApply wraps err so that a Hook returning it lets the node perform the
// request first (a write is applied and remembered for deduplication) and
// then fail it with err: the situation OUTCOME_UNKNOWN describes.
func AfterApply(err error) error { return afterApply{err: err} }

// isAfterApply unwraps an AfterApply error.
func isAfterApply(err error) (error, bool) {
	var a afterApply
	if errors.As(err, &a) {
		return a.err, true
	}
	return nil, false
}
