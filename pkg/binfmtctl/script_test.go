package binfmtctl_test

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmtctl"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

var updateScripts = flag.Bool("update", false, "rewrite the expected output in testdata/script/*.txtar")

func TestMain(m *testing.M) {
	// Scripts run "binfmtctl" as a real program: testscript puts a copy
	// of this test binary under that name in PATH, and it runs Run.
	testscript.Main(m, map[string]func(){
		"binfmtctl": func() { os.Exit(binfmtctl.Run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// scriptDir holds the CLI scripts. Scripts named kernel_*.txtar need the
// kernel: each runs in its own private user and mount namespace, with its
// binfmt_misc mounted at $BINFMT.
var scriptDir = filepath.Join("..", "..", "testdata", "script")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scriptDir, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", scriptDir, err)
	}
	var plain, kernel []string
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "kernel_") {
			kernel = append(kernel, f)
		} else {
			plain = append(plain, f)
		}
	}
	t.Run("plain", func(t *testing.T) {
		testscript.Run(t, scriptParams(plain, ""))
	})
	for _, f := range kernel {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			testscript.Run(t, scriptParams([]string{f}, ns.BinfmtDir))
		})
	}
}

func scriptParams(files []string, binfmtDir string) testscript.Params {
	return testscript.Params{
		Files:               files,
		UpdateScripts:       *updateScripts,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			if binfmtDir != "" {
				e.Setenv("BINFMT", binfmtDir)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
		},
	}
}

// cmdExitCode runs "exitcode N PROGRAM ARGS...": PROGRAM like exec, whose
// exit code must be N. Its stdout and stderr are kept for the stdout and
// stderr commands.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: exitcode N PROGRAM [ARGS...] (no negation; N says what to expect)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("running %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
