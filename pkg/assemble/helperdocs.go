package assemble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// helperDocs are the files binfmtctl prints about itself, by the name the
// package definitions give them under ${STAGE_DIR}/docs: its manual page
// and its completions, made from the command table its parser reads.
var helperDocs = []struct {
	file string
	args []string
}{
	{"binfmtctl.8", []string{"manual"}},
	{"binfmtctl.bash", []string{"completion", "bash"}},
	{"_binfmtctl", []string{"completion", "zsh"}},
	{"binfmtctl.fish", []string{"completion", "fish"}},
}

// writeHelperDocs has the helper write its manual page and completions
// into dir, as the spec's %build has its helper write them, so that both
// builds ship the same bytes; the manual page is then compressed with
// `gzip -9 -n`, the command rpmbuild's brp-compress runs on man pages.
//
// A helper built for another architecture than this machine's cannot run
// here; then one is built for this machine from the same sources and
// version, only to print them.
func writeHelperDocs(ctx context.Context, src, helper, dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("staging binfmtctl's manual: %w", err)
	}
	run := helper
	for _, d := range helperDocs {
		out, err := runHelper(ctx, run, d.args)
		if err != nil && errors.Is(err, syscall.ENOEXEC) && run == helper {
			run = filepath.Join(dir, ".binfmtctl-native")
			if berr := buildHelper(ctx, src, run, arch{rpm: runtime.GOARCH, goarch: runtime.GOARCH}, version); berr != nil {
				return berr
			}
			defer os.Remove(run)
			out, err = runHelper(ctx, run, d.args)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.file), out, 0o644); err != nil {
			return fmt.Errorf("staging binfmtctl's %s: %w", d.file, err)
		}
	}
	gzip, err := exec.LookPath("gzip")
	if err != nil {
		return fmt.Errorf("compressing binfmtctl's manual page: gzip is not in PATH (apt-get install gzip, dnf install gzip): %w", err)
	}
	cmd := exec.CommandContext(ctx, gzip, "-9", "-n", "-f", filepath.Join(dir, "binfmtctl.8"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compressing binfmtctl's manual page (gzip -9 -n): %w\n%s", err, bytes.TrimSpace(out))
	}
	return nil
}

func runHelper(ctx context.Context, helper string, args []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helper, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("running %s %s for the package's manual and completions: %w\n%s", helper, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
