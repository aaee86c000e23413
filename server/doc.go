// Package server implements coord's gRPC services.
//
// Every handler follows the same path: validate the request (bad input is
// InvalidArgument with a message naming the field, and nothing is applied),
// build an internal command, hand it to the node, and map the result to the
// API response. Errors are mapped to gRPC status codes in exactly one place
// (errors.go).
//
// Any node accepts any request. A unary interceptor forwards calls that need
// the leader (writes, linearizable reads, membership changes) from a follower
// to the leader over a pooled connection, carrying the request-id metadata
// along; stale reads and per-node calls are served locally. A forwarded call
// is never forwarded again: a node that receives one but is no longer the
// leader answers NOT_LEADER with the leader it knows of.
package server
