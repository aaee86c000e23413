package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
)

// Sentinel errors. Every error returned by a Client call can be tested
// against them with errors.Is; most calls return an *Error, whose Is method
// matches the sentinel that corresponds to its code and reason.
var (
	// ErrNotLeader matches an error with reason NOT_LEADER: the node that
	// answered is not the leader and could not forward the request. The
	// request was not applied.
	ErrNotLeader = errors.New("coord: not leader")
	// ErrNoLeader matches an error with reason NO_LEADER: no leader is known
	// (an election is under way or there is no quorum). The request was not
	// applied.
	ErrNoLeader = errors.New("coord: no leader")
	// ErrNotApplied matches an error with reason NOT_APPLIED: the cluster
	// refused the request before it entered the log.
	ErrNotApplied = errors.New("coord: not applied")
	// ErrOutcomeUnknown matches an error after which a write may or may not
	// have been applied: reason OUTCOME_UNKNOWN, or a write whose context
	// ended after at least one attempt could have reached the leader.
	ErrOutcomeUnknown = errors.New("coord: outcome unknown")
	// ErrUnavailable matches every error with gRPC code Unavailable,
	// including NOT_LEADER, NO_LEADER, NOT_APPLIED and OUTCOME_UNKNOWN.
	ErrUnavailable = errors.New("coord: unavailable")
	// ErrDeadline matches gRPC code DeadlineExceeded, reason DEADLINE, and a
	// call abandoned because its context's deadline passed.
	ErrDeadline = errors.New("coord: deadline exceeded")
	// ErrInvalidArgument matches gRPC code InvalidArgument and arguments the
	// client rejects before sending. Nothing was applied.
	ErrInvalidArgument = errors.New("coord: invalid argument")
	// ErrNotFound matches gRPC code NotFound.
	ErrNotFound = errors.New("coord: not found")
	// ErrFailedPrecondition matches gRPC code FailedPrecondition.
	ErrFailedPrecondition = errors.New("coord: failed precondition")
	// ErrAlreadyExists matches gRPC code AlreadyExists.
	ErrAlreadyExists = errors.New("coord: already exists")
	// ErrResourceExhausted matches gRPC code ResourceExhausted.
	ErrResourceExhausted = errors.New("coord: resource exhausted")
	// ErrPermissionDenied matches gRPC code PermissionDenied.
	ErrPermissionDenied = errors.New("coord: permission denied")
	// ErrUnimplemented matches gRPC code Unimplemented: the server does not
	// offer the method (for example an older coordd).
	ErrUnimplemented = errors.New("coord: unimplemented")
	// ErrFenced matches an error with reason FENCED: a fence the request
	// carried does not hold (the lock has moved on). Nothing was applied.
	ErrFenced = errors.New("coord: fenced")
	// ErrClosed is returned by calls on a Client after Close.
	ErrClosed = errors.New("coord: client closed")
)

// codeSentinels maps the sentinels that stand for a bare gRPC code.
var codeSentinels = map[error]codes.Code{
	ErrUnavailable:        codes.Unavailable,
	ErrInvalidArgument:    codes.InvalidArgument,
	ErrNotFound:           codes.NotFound,
	ErrFailedPrecondition: codes.FailedPrecondition,
	ErrAlreadyExists:      codes.AlreadyExists,
	ErrResourceExhausted:  codes.ResourceExhausted,
	ErrPermissionDenied:   codes.PermissionDenied,
	ErrUnimplemented:      codes.Unimplemented,
	ErrDeadline:           codes.DeadlineExceeded,
}

// reasonSentinels maps the sentinels that stand for an ErrorInfo reason.
var reasonSentinels = map[error]string{
	ErrNotLeader:      coordv1.ReasonNotLeader,
	ErrNoLeader:       coordv1.ReasonNoLeader,
	ErrNotApplied:     coordv1.ReasonNotApplied,
	ErrOutcomeUnknown: coordv1.ReasonOutcomeUnknown,
	ErrDeadline:       coordv1.ReasonDeadline,
	ErrFenced:         coordv1.ReasonFenced,
}

// Error is a failed call as reported by a coord server (or, for arguments
// rejected locally, by the client). Use errors.As to reach it and errors.Is
// with the sentinels above to classify it.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the google.rpc.ErrorInfo reason in domain "coord" (one of
	// the coordv1.Reason* constants), or empty.
	Reason string
	// Message is the server's status message.
	Message string
	// LeaderID names the leader when the server knew it (NOT_LEADER).
	LeaderID string
	// LeaderAddress is the leader's gRPC address when the server knew it.
	LeaderAddress string

	cause error
}

// Error formats the code, the reason when present, and the message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("coord: ")
	b.WriteString(e.Code.String())
	if e.Reason != "" {
		b.WriteString(" ")
		b.WriteString(e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.LeaderID != "" || e.LeaderAddress != "" {
		fmt.Fprintf(&b, " (leader %s at %s)", orDash(e.LeaderID), orDash(e.LeaderAddress))
	}
	return b.String()
}

// Is reports whether target is the sentinel for e's reason or code.
func (e *Error) Is(target error) bool {
	if reason, ok := reasonSentinels[target]; ok && e.Reason == reason {
		return true
	}
	code, ok := codeSentinels[target]
	return ok && e.Code == code
}

// Unwrap returns the underlying gRPC status error, if any.
func (e *Error) Unwrap() error { return e.cause }

// GRPCStatus returns e as a gRPC status, so status.Code(err) works on it.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// invalidArgument builds a locally detected argument error.
func invalidArgument(format string, args ...any) *Error {
	return &Error{Code: codes.InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// asError converts a gRPC status error into an *Error. ok is false for
// errors that carry no gRPC status (they are returned to the caller as is).
func asError(err error) (*Error, bool) {
	var ce *Error
	if errors.As(err, &ce) {
		return ce, true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		st := status.FromContextError(err)
		return &Error{Code: st.Code(), Message: st.Message(), cause: err}, true
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	e := &Error{Code: st.Code(), Message: st.Message(), cause: err}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != coordv1.ErrorDomain {
			continue
		}
		e.Reason = info.GetReason()
		e.LeaderID = info.GetMetadata()[coordv1.MetaLeaderID]
		e.LeaderAddress = info.GetMetadata()[coordv1.MetaLeaderAddress]
		break
	}
	return e, true
}

// notApplied reports whether e proves the request never entered the log.
func (e *Error) notApplied() bool {
	switch e.Reason {
	case coordv1.ReasonNotLeader, coordv1.ReasonNoLeader, coordv1.ReasonNotApplied:
		return true
	}
	return false
}

// retryable reports whether another attempt (with the same request id for a
// write) may succeed. The caller's context is checked separately.
func (e *Error) retryable() bool {
	switch e.Code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// abandonedError is returned when the caller's context ends (or the client
// is closed) before a call succeeded.
type abandonedError struct {
	cause    error // ctx.Err() or ErrClosed
	last     error // the last attempt's error, if any
	attempts int
	unknown  bool // a write that may have been applied
}

// Error describes why the call stopped and the last attempt's error.
func (e *abandonedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "coord: gave up after %d attempt(s): %v", e.attempts, e.cause)
	if e.unknown {
		b.WriteString(" (write outcome unknown)")
	}
	if e.last != nil {
		fmt.Fprintf(&b, "; last error: %v", e.last)
	}
	return b.String()
}

// Unwrap exposes the cause, ErrOutcomeUnknown for an unknown write outcome,
// ErrDeadline for a passed deadline, and the last attempt's error.
func (e *abandonedError) Unwrap() []error {
	errs := []error{e.cause}
	if e.unknown {
		errs = append(errs, ErrOutcomeUnknown)
	}
	if errors.Is(e.cause, context.DeadlineExceeded) {
		errs = append(errs, ErrDeadline)
	}
	if e.last != nil {
		errs = append(errs, e.last)
	}
	return errs
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
