package node

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader: this node is not the leader; the command was not applied.
	// The error is a *NotLeaderError when the leader is known.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: no leader is known (election under way, or no quorum);
	// not applied.
	ErrNoLeader = errors.New("no leader")
	// ErrNotApplied: refused before entering the log (queue full, leadership
	// transfer in progress); safe to retry.
	ErrNotApplied = errors.New("not applied")
	// ErrOutcomeUnknown: the command may or may not have been applied.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrTooLarge: the encoded command exceeds MaxCommandBytes.
	ErrTooLarge = errors.New("command too large")
	// ErrShutdown: the node is shutting down.
	ErrShutdown = errors.New("node is shutting down")
	// ErrHalted: the state machine halted on a corrupt log entry.
	ErrHalted = errors.New("state machine halted")
	// ErrUnknownMember: a membership call named a node that is not a member.
	ErrUnknownMember = errors.New("unknown member")
)

// NotLeaderError names the leader, when known.
type NotLeaderError struct {
	LeaderID      string
	LeaderAddress string // gRPC address; empty if not yet registered
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader; leader unknown"
	}
	return fmt.Sprintf("not the leader; leader is %s at %s", e.LeaderID, e.LeaderAddress)
}

// Unwrap makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
