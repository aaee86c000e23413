package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/internal/cmdpb"
	"coord/node"
)

// invalidError is bad input found at the edge.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// invalid returns an InvalidArgument error with a formatted message.
func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// toStatus maps an error to a gRPC status. It is the only place that does.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (e.g. from a forwarded call)
	}
	var inv *invalidError
	var nl *node.NotLeaderError
	switch {
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, inv.msg)
	case errors.As(err, &nl):
		return withInfo(codes.Unavailable, err.Error(), coordv1.ReasonNotLeader,
			map[string]string{coordv1.MetaLeaderID: nl.LeaderID, coordv1.MetaLeaderAddress: nl.LeaderAddress})
	case errors.Is(err, node.ErrNotLeader), errors.Is(err, node.ErrNoLeader):
		return withInfo(codes.Unavailable, err.Error(), coordv1.ReasonNoLeader, nil)
	case errors.Is(err, node.ErrOutcomeUnknown) && errors.Is(err, context.DeadlineExceeded):
		return withInfo(codes.DeadlineExceeded, err.Error(), coordv1.ReasonDeadline, nil)
	case errors.Is(err, node.ErrOutcomeUnknown) && errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, node.ErrOutcomeUnknown):
		return withInfo(codes.Unavailable, err.Error(), coordv1.ReasonOutcomeUnknown, nil)
	case errors.Is(err, node.ErrNotApplied), errors.Is(err, node.ErrShutdown):
		return withInfo(codes.Unavailable, err.Error(), coordv1.ReasonNotApplied, nil)
	case errors.Is(err, node.ErrTooLarge):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, node.ErrUnknownMember):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return withInfo(codes.DeadlineExceeded, err.Error(), coordv1.ReasonDeadline, nil)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func withInfo(code codes.Code, msg, reason string, meta map[string]string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Domain: coordv1.ErrorDomain, Reason: reason, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}

// rejection maps a deterministic refusal by the state machine to a status.
func rejection(r *cmdpb.Result) error {
	code := codes.FailedPrecondition
	switch r.RejectCode {
	case cmdpb.RejectCode_REJECT_CODE_UNSPECIFIED:
		return nil
	case cmdpb.RejectCode_REJECT_CODE_INVALID_ARGUMENT:
		code = codes.InvalidArgument
	case cmdpb.RejectCode_REJECT_CODE_NOT_FOUND:
		code = codes.NotFound
	case cmdpb.RejectCode_REJECT_CODE_RESOURCE_EXHAUSTED:
		code = codes.ResourceExhausted
	case cmdpb.RejectCode_REJECT_CODE_FENCED:
		return withInfo(codes.FailedPrecondition, r.RejectMessage, coordv1.ReasonFenced, nil)
	}
	return status.Error(code, r.RejectMessage)
}
