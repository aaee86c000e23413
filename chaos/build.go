package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot returns the directory of the go.mod that the working
// directory belongs to.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module; run from the coord repository")
	}
	return filepath.Dir(gomod), nil
}

// BuildCoordd builds coordd from the module at root into dir, with the
// given build tags (comma-separated, may be empty), and returns the
// binary's path.
func BuildCoordd(ctx context.Context, root, dir, tags string, race bool) (string, error) {
	bin := filepath.Join(dir, "coordd")
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/coordd")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s ./cmd/coordd: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}
