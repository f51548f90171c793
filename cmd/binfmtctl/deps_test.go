package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTool runs the go command with CGO_ENABLED=0, as the Makefile builds
// binfmtctl.
func goTool(t *testing.T, args ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("missing the go command (go test puts it in PATH): %v", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// TestLeanDependencies keeps the helper that runs inside every rpm
// transaction small and quick to start: besides the standard library it
// may link only x/sys and this module's own packages, and none of the
// standard packages whose initialisation or size it was measured to pay
// for (docs/benchmarks.md): not pflag, which brings net, flag and
// encoding/csv; not encoding/json, text/tabwriter or os/exec.
func TestLeanDependencies(t *testing.T) {
	module := strings.TrimSpace(goTool(t, "list", "-m"))
	deps := goTool(t, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	allowed := []string{module + "/", "golang.org/x/sys/"}
	for _, p := range strings.Fields(deps) {
		ok := false
		for _, a := range allowed {
			if p == strings.TrimSuffix(a, "/") || strings.HasPrefix(p, a) {
				ok = true
			}
		}
		if !ok || strings.Contains(p, "nfpm") || strings.Contains(p, "rpmutils") {
			t.Errorf("cmd/binfmtctl depends on %s; it may only link the standard library and x/sys", p)
		}
	}
	std := goTool(t, "list", "-deps", "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", ".")
	for _, p := range strings.Fields(std) {
		switch p {
		case "net", "flag", "encoding/json", "text/tabwriter", "os/exec":
			t.Errorf("cmd/binfmtctl depends on %s, which costs start-up time in every rpm transaction", p)
		}
	}
}

// TestStaticBinary builds binfmtctl as the Makefile does and checks that
// the result has no dynamic loader: it must run in any rpm root.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the build of binfmtctl in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "binfmtctl")
	goTool(t, "build", "-trimpath", "-o", bin, ".")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binfmtctl built with CGO_ENABLED=0 has a %v program header: it is not static", p.Type)
		}
	}
}
