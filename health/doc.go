// Package health serves a node's liveness, readiness and metrics.
//
//   - grpc.health.v1 on the gRPC port: SERVING while the node is ready,
//     NOT_SERVING otherwise (service "" and "coord.v1.KVService" etc.).
//   - HTTP /healthz: 200 while the process is up.
//   - HTTP /readyz: 200 when the node is a member of a cluster with a known
//     leader and has applied everything it knows to be committed; 503 with
//     the reason otherwise.
//   - HTTP /metrics: Prometheus metrics (Raft state, term, indexes, apply
//     latency, request counts and latencies by method and code, state-machine
//     batch sizes, snapshot durations).
//   - HTTP /debug/pprof/: the Go profiler.
package health
