package main

import "github.com/spf13/cobra"

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the coordctl version",
		Long: `Print the coordctl version (set at build time with
-ldflags "-X main.version=..."; "dev" otherwise). No request is sent.

Table output: "coordctl VERSION".
JSON: {"version": "VERSION"}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if a.out().json {
				return a.out().value(struct {
					Version string `json:"version"`
				}{version})
			}
			return a.out().line("coordctl %s", version)
		},
	}
}
