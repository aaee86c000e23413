package main

import (
	"github.com/spf13/cobra"

	"coord/internal/loadgen"
)

func (a *app) benchLogAppendCmd(f *benchFlags) *cobra.Command {
	var size, perRequest, streams int
	cmd := &cobra.Command{
		Use:   "log-append [--value-size 256] [--events 1] [--streams 0]",
		Short: "Append events to the event log (one Append per operation)",
		Long: `Each operation appends --events events of --value-size bytes, atomically,
to the worker's own stream (or, with --streams N, to one of N streams shared
by the workers). ops/s counts requests; events/s is ops/s times --events.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 0 || size > 64<<10 || perRequest < 1 || streams < 0 {
				return usagef("invalid --value-size %d, --events %d or --streams %d", size, perRequest, streams)
			}
			params := map[string]any{"value_size": size, "events": perRequest, "streams": streams}
			return a.runBench(cmd, f, "log-append", params, func(pool loadgen.Pool, prefix string) loadgen.Workload {
				return &loadgen.LogAppend{Pool: pool, Prefix: prefix, ValueSize: size, PerRequest: perRequest, Streams: streams}
			})
		},
	}
	cmd.Flags().IntVar(&size, "value-size", 256, "event payload size in bytes")
	cmd.Flags().IntVar(&perRequest, "events", 1, "events per append request")
	cmd.Flags().IntVar(&streams, "streams", 0, "streams shared by the workers (0: one per worker)")
	return cmd
}
