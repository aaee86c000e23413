package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// rules lists, per package pattern, the import paths (prefixes) its
// transitive dependencies must not contain.
var rules = []struct {
	pkgs      []string
	forbidden []string
}{
	{ // primitives: pure transitions over internal/sm
		pkgs:      []string{"coord/kv", "coord/locks", "coord/eventlog"},
		forbidden: []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "google.golang.org/grpc", "coord/fsm", "coord/node", "coord/server", "coord/client"},
	},
	{
		pkgs:      []string{"coord/internal/sm"},
		forbidden: []string{"coord/"},
	},
	{
		pkgs:      []string{"coord/fsm"},
		forbidden: []string{"google.golang.org/grpc", "coord/node", "coord/server", "coord/client"},
	},
	{
		pkgs:      []string{"coord/node"},
		forbidden: []string{"coord/server", "coord/client"},
	},
	{
		pkgs:      []string{"coord/client"},
		forbidden: []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "coord/fsm", "coord/node", "coord/server", "coord/kv", "coord/locks", "coord/eventlog", "coord/internal/"},
	},
	{ // the CLI talks to the cluster through the client only
		pkgs:      []string{"coord/cmd/coordctl"},
		forbidden: []string{"github.com/hashicorp/raft", "go.etcd.io/bbolt", "coord/fsm", "coord/node", "coord/server"},
	},
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	for _, r := range rules {
		for _, pkg := range r.pkgs {
			for _, d := range deps(t, pkg) {
				if d == pkg {
					continue
				}
				for _, f := range r.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s depends on %s, which its layer must not import", pkg, d)
					}
				}
			}
		}
	}
}
