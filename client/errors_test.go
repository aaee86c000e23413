package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

func TestAsErrorParsesErrorInfo(t *testing.T) {
	e, ok := asError(clienttest.NotLeaderError("n2", "10.0.0.2:7001"))
	if !ok {
		t.Fatal("asError: not a status error")
	}
	if e.Code != codes.Unavailable || e.Reason != coordv1.ReasonNotLeader ||
		e.LeaderID != "n2" || e.LeaderAddress != "10.0.0.2:7001" {
		t.Fatalf("parsed %+v", e)
	}
	for _, target := range []error{ErrNotLeader, ErrUnavailable} {
		if !errors.Is(e, target) {
			t.Errorf("errors.Is(%v, %v) = false", e, target)
		}
	}
	for _, target := range []error{ErrNoLeader, ErrOutcomeUnknown, ErrInvalidArgument} {
		if errors.Is(e, target) {
			t.Errorf("errors.Is(%v, %v) = true", e, target)
		}
	}
	if status.Code(e) != codes.Unavailable {
		t.Errorf("status.Code = %v", status.Code(e))
	}
}

func TestErrorIsMatchesCodesAndReasons(t *testing.T) {
	cases := []struct {
		err    error
		target error
	}{
		{clienttest.NoLeaderError(), ErrNoLeader},
		{clienttest.NotAppliedError(), ErrNotApplied},
		{clienttest.OutcomeUnknownError(), ErrOutcomeUnknown},
		{clienttest.ReasonError(codes.DeadlineExceeded, coordv1.ReasonDeadline, "late", nil), ErrDeadline},
		{status.Error(codes.DeadlineExceeded, "late"), ErrDeadline},
		{status.Error(codes.InvalidArgument, "bad"), ErrInvalidArgument},
		{status.Error(codes.NotFound, "x"), ErrNotFound},
		{status.Error(codes.FailedPrecondition, "x"), ErrFailedPrecondition},
		{status.Error(codes.AlreadyExists, "x"), ErrAlreadyExists},
		{status.Error(codes.ResourceExhausted, "x"), ErrResourceExhausted},
		{status.Error(codes.PermissionDenied, "x"), ErrPermissionDenied},
		{status.Error(codes.Unimplemented, "x"), ErrUnimplemented},
	}
	for _, tc := range cases {
		e, ok := asError(tc.err)
		if !ok || !errors.Is(e, tc.target) {
			t.Errorf("errors.Is(asError(%v), %v) = false", tc.err, tc.target)
		}
		if errors.Is(e, ErrNotLeader) {
			t.Errorf("%v unexpectedly matches ErrNotLeader", e)
		}
	}
}

func TestAsErrorIgnoresForeignDomainAndPlainErrors(t *testing.T) {
	st, _ := status.New(codes.Unavailable, "x").WithDetails()
	if e, ok := asError(st.Err()); !ok || e.Reason != "" {
		t.Fatalf("asError(plain Unavailable) = %+v, %v", e, ok)
	}
	if _, ok := asError(errors.New("local failure")); ok {
		t.Fatal("asError accepted an error without status")
	}
	if e, ok := asError(fmt.Errorf("wrapped: %w", context.Canceled)); !ok || e.Code != codes.Canceled {
		t.Fatalf("asError(context.Canceled) = %+v, %v", e, ok)
	}
}

func TestAbandonedErrorUnwraps(t *testing.T) {
	last, _ := asError(clienttest.NoLeaderError())
	err := (&call{last: last, attempts: 3, unknown: true}).abandon(context.DeadlineExceeded)
	for _, target := range []error{context.DeadlineExceeded, ErrDeadline, ErrOutcomeUnknown, ErrNoLeader} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	err = (&call{attempts: 0}).abandon(context.Canceled)
	if errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrDeadline) || !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned read without attempts: %v", err)
	}
}

func TestOutcomeUnknownOnlyWhenAWriteMayHaveApplied(t *testing.T) {
	refused := []error{clienttest.NoLeaderError(), clienttest.NotAppliedError(), clienttest.NotLeaderError("n1", "x:1")}
	maybe := []error{clienttest.OutcomeUnknownError(), status.Error(codes.Unavailable, "conn reset"), status.Error(codes.DeadlineExceeded, "attempt timed out")}
	cl := &call{}
	for _, err := range refused {
		e, _ := asError(err)
		cl.record(e, true, false)
	}
	if got := cl.abandon(context.DeadlineExceeded); errors.Is(got, ErrOutcomeUnknown) {
		t.Fatalf("write refused by every attempt reported %v", got)
	}
	for _, err := range maybe {
		cl := &call{}
		e, _ := asError(err)
		cl.record(e, true, false)
		if got := cl.abandon(context.DeadlineExceeded); !errors.Is(got, ErrOutcomeUnknown) {
			t.Errorf("write after %v reported %v, want ErrOutcomeUnknown", err, got)
		}
		read := &call{}
		read.record(e, false, false)
		if got := read.abandon(context.DeadlineExceeded); e.Reason == "" && errors.Is(got, ErrOutcomeUnknown) {
			t.Errorf("read after %v reported %v", err, got)
		}
	}
	// An attempt cut short by the caller's context keeps the earlier error.
	cl = &call{}
	first, _ := asError(clienttest.NoLeaderError())
	cut, _ := asError(status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	cl.record(first, true, false)
	cl.record(cut, true, true)
	if got := cl.abandon(context.DeadlineExceeded); !errors.Is(got, ErrNoLeader) || !errors.Is(got, ErrOutcomeUnknown) {
		t.Fatalf("abandoned after a cut attempt: %v", got)
	}
}
