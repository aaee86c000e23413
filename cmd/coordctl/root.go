// Command coordctl is the command-line client of a coord cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"coord/client"
)

// envEndpoints names the environment variable that provides the default
// endpoint list.
const envEndpoints = "COORD_ENDPOINTS"

// defaultEndpoints is used when neither --endpoints nor COORD_ENDPOINTS is set.
const defaultEndpoints = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the request failed, or its outcome was negative
	exitUsage = 2 // bad command line; nothing was sent
)

const rootLong = `coordctl talks to a coord cluster over gRPC.

Every command connects to the endpoints given by --endpoints (default: the
COORD_ENDPOINTS environment variable, else ` + defaultEndpoints + `),
learns the leader from them, and must finish within --timeout.

Output (-o/--output):
  table  human-readable text (default).
  json   one JSON document on stdout. Responses of the gRPC API are printed
         with protojson using the .proto field names (snake_case) and every
         field present, including zero values; uint64/int64 are decimal
         strings, bytes are base64, enums are their names (e.g.
         "ROLE_LEADER"), timestamps are RFC 3339 strings and unset messages
         are null. Output is indented by two spaces, fields appear in .proto
         order, and a newline ends the document.

Exit status: 0 on success; 1 when a request fails or its outcome is
negative (key not found, revision mismatch); 2 for a bad command line, in
which case nothing is sent. Errors are one line on stderr, prefixed with
"coordctl: ".`

// version is the coordctl version, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

// usageError marks an error in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app holds the global flags and the process environment of one run.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	endpoints string
	timeout   time.Duration
	output    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes coordctl with args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		if ec.msg != "" {
			fmt.Fprintf(stderr, "coordctl: %s\n", oneLine(ec.msg))
		}
		return ec.code
	}
	fmt.Fprintf(stderr, "coordctl: %s\n", oneLine(err.Error()))
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitError
}

// oneLine folds a message onto a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (a *app) rootCmd() *cobra.Command {
	defEndpoints := defaultEndpoints
	if env := a.getenv(envEndpoints); env != "" {
		defEndpoints = env
	}
	root := &cobra.Command{
		Use:               "coordctl",
		Short:             "Command-line client of a coord cluster",
		Long:              rootLong,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Args:              usageArgs(cobra.NoArgs),
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.validate() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.endpoints, "endpoints", defEndpoints, "comma-separated gRPC addresses (host:port) of cluster members; default from $"+envEndpoints)
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "deadline for the whole command")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(a.clusterCmd(), a.kvCmd(), a.lockCmd(), a.logCmd(), a.benchCmd(), a.versionCmd())
	return root
}

// groupCmd returns a command that only holds subcommands.
func groupCmd(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// usageArgs turns an argument validator's errors into usage errors that
// name the command.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		err := v(cmd, args)
		if err == nil || !cmd.HasParent() {
			return usageErrorOrNil(err)
		}
		return usagef("%s: %v (see '%s --help')", strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "), err, cmd.CommandPath())
	}
}

func usageErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// validate checks the global flags that every command uses. The endpoint
// list is checked by withClient, before any request.
func (a *app) validate() error {
	if a.output != "table" && a.output != "json" {
		return usagef("invalid --output %q: want table or json", a.output)
	}
	if a.timeout <= 0 {
		return usagef("invalid --timeout %v: must be positive", a.timeout)
	}
	return nil
}

// endpointList parses --endpoints.
func (a *app) endpointList() ([]string, error) {
	var eps []string
	for _, ep := range strings.Split(a.endpoints, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(ep); err != nil || port == "" {
			return nil, usagef("invalid endpoint %q in --endpoints: want host:port", ep)
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 {
		return nil, usagef("no endpoints: set --endpoints or $%s", envEndpoints)
	}
	return eps, nil
}

// withClient connects to the cluster and runs fn, all within --timeout.
func (a *app) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	eps, err := a.endpointList()
	if err != nil {
		return err
	}
	c, err := client.New(ctx, client.Config{Endpoints: eps, DialTimeout: a.timeout})
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// out returns the printer for the chosen output format.
func (a *app) out() printer {
	return printer{w: a.stdout, json: a.output == "json"}
}
