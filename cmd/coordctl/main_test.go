package main

import (
	"bytes"
	"strings"
	"testing"

	"coord/client/clienttest"
)

// result is one coordctl run.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs coordctl with args and the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// runOn runs coordctl against the fake cluster fc.
func runOn(t *testing.T, fc *clienttest.Cluster, args ...string) result {
	t.Helper()
	return runCLI(t, nil, append([]string{"--endpoints", strings.Join(fc.Addrs(), ",")}, args...)...)
}

// mustSucceed fails the test unless r exited 0 with nothing on stderr.
func mustSucceed(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

// mustFail checks exit code want and exactly one "coordctl: " line on
// stderr, and returns that line without its prefix.
func mustFail(t *testing.T, r result, want int) string {
	t.Helper()
	if r.code != want {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, want, r.stderr)
	}
	line, ok := strings.CutPrefix(r.stderr, "coordctl: ")
	if !ok || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("stderr %q: want exactly one line starting with \"coordctl: \"", r.stderr)
	}
	return strings.TrimSuffix(line, "\n")
}

func TestBadCommandLinesSendNothing(t *testing.T) {
	fc := clienttest.Start(t, 1)
	cases := map[string][]string{
		"negative ttl":          {"kv", "put", "k", "v", "--ttl", "-5s"},
		"bad ttl":               {"kv", "put", "k", "v", "--ttl", "soon"},
		"negative revision":     {"kv", "put", "k", "v", "--expect-revision", "-1"},
		"unknown output":        {"-o", "yaml", "kv", "get", "k"},
		"zero timeout":          {"--timeout", "0s", "kv", "get", "k"},
		"endpoint without port": {"--endpoints", "localhost", "kv", "get", "k"},
		"empty endpoints":       {"--endpoints", " , ", "kv", "get", "k"},
		"missing argument":      {"kv", "get"},
		"extra argument":        {"cluster", "remove", "n1", "n2"},
		"unknown flag":          {"kv", "get", "k", "--nope"},
		"unknown command":       {"bogus"},
		"unknown subcommand":    {"cluster", "bogus"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			// The fake cluster comes first; a later --endpoints overrides it.
			r := runOn(t, fc, args...)
			mustFail(t, r, exitUsage)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if calls := fc.Calls(""); len(calls) != 0 {
		t.Fatalf("bad command lines sent %d requests", len(calls))
	}
}

func TestEndpointsFromEnvironment(t *testing.T) {
	fc := clienttest.Start(t, 1)
	env := map[string]string{envEndpoints: strings.Join(fc.Addrs(), ",")}
	mustSucceed(t, runCLI(t, env, "kv", "put", "k", "v"))
	if _, ok := fc.Value("k"); !ok {
		t.Fatal("put through $COORD_ENDPOINTS did not reach the cluster")
	}

	// --endpoints overrides the environment.
	env[envEndpoints] = "127.0.0.1:1"
	r := mustSucceed(t, runCLI(t, env, "--endpoints", fc.Addrs()[0], "kv", "get", "k"))
	if r.stdout != "v\n" {
		t.Fatalf("get printed %q", r.stdout)
	}
}

func TestDefaultEndpoints(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	root := a.rootCmd()
	if got := root.PersistentFlags().Lookup("endpoints").DefValue; got != defaultEndpoints {
		t.Fatalf("default --endpoints %q, want %q", got, defaultEndpoints)
	}
}

func TestVersion(t *testing.T) {
	r := mustSucceed(t, runCLI(t, nil, "version"))
	if r.stdout != "coordctl dev\n" {
		t.Fatalf("version printed %q", r.stdout)
	}
	old := version
	version = "1.2.3"
	defer func() { version = old }()
	r = mustSucceed(t, runCLI(t, nil, "version", "-o", "json"))
	if r.stdout != "{\n  \"version\": \"1.2.3\"\n}\n" {
		t.Fatalf("version -o json printed %q", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	r := mustSucceed(t, runCLI(t, nil, "completion", "bash"))
	if !strings.Contains(r.stdout, "coordctl") {
		t.Fatalf("completion script does not mention coordctl: %.200q", r.stdout)
	}
}

func TestHelpListsCommands(t *testing.T) {
	r := mustSucceed(t, runCLI(t, nil))
	for _, want := range []string{"cluster", "kv", "version", "completion", "--endpoints", "--timeout", "--output"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help does not mention %q", want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\n  b\tc\n"); got != "a b c" {
		t.Fatalf("oneLine = %q", got)
	}
}
