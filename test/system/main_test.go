package systemtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	// repoDir is the repository root.
	repoDir string
	// binDir holds the coordd and coordctl that TestMain built.
	binDir string
	// skipReason, when set, makes every test skip.
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run builds coordd and coordctl once for all tests, runs them and removes
// the binaries.
func run(m *testing.M) int {
	if _, err := exec.LookPath("bash"); err != nil {
		skipReason = "bash not found: the system tests drive scripts/cluster.sh"
		return m.Run()
	}
	var err error
	if repoDir, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	if binDir, err = os.MkdirTemp("", "coord-systemtest-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	if err := buildBinaries(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "systemtest:", err)
		return 1
	}
	return m.Run()
}

// buildBinaries builds coordd and coordctl into dir. When the tests run with
// -race, so do the binaries: the packages are already compiled that way, and
// a data race inside a real coordd then fails the test (see checkRaces).
func buildBinaries(dir string) error {
	args := []string{"build", "-ldflags", "-X main.version=systemtest", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/coordd", "./cmd/coordctl")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return nil
}

// skipIfUnsupported skips the test when the system tests cannot run here.
func skipIfUnsupported(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
