package main

import (
	"github.com/spf13/cobra"

	"coord/internal/loadgen"
)

func (a *app) benchLogAppendCmd(f *benchFlags) *cobra.Command {
	var size, perRequest, streams, subscribers int
	cmd := &cobra.Command{
		Use:   "log-append [--value-size 256] [--events 1] [--streams 0] [--subscribers 0]",
		Short: "Append events to the event log (one Append per operation)",
		Long: `Each operation appends --events events of --value-size bytes, atomically,
to the worker's own stream (or, with --streams N, to one of N streams shared
by the workers). ops/s counts requests; events/s is ops/s times --events.

With --subscribers N, N subscriptions to all of the run's streams start
before the load, and the report adds the subscription lag: for each event
appended after the warm-up, the time from sending its append to its
delivery to a subscriber (so it includes the append's commit).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 0 || size > 64<<10 || perRequest < 1 || streams < 0 || subscribers < 0 {
				return usagef("invalid --value-size %d, --events %d, --streams %d or --subscribers %d", size, perRequest, streams, subscribers)
			}
			params := map[string]any{"value_size": size, "events": perRequest, "streams": streams, "subscribers": subscribers}
			return a.runBench(cmd, f, "log-append", params, func(pool loadgen.Pool, prefix string) loadgen.Workload {
				return &loadgen.LogAppend{Pool: pool, Prefix: prefix, ValueSize: size, PerRequest: perRequest,
					Streams: streams, Subscribers: subscribers, Warmup: f.warmup}
			})
		},
	}
	cmd.Flags().IntVar(&size, "value-size", 256, "event payload size in bytes")
	cmd.Flags().IntVar(&perRequest, "events", 1, "events per append request")
	cmd.Flags().IntVar(&streams, "streams", 0, "streams shared by the workers (0: one per worker)")
	cmd.Flags().IntVar(&subscribers, "subscribers", 0, "subscriptions following the appends, to measure subscription lag")
	return cmd
}
