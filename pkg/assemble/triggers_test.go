package assemble_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestBuildTriggers declares a trigger the way spec/triggers.yaml does and
// reads it back from the built package with rpm.
func TestBuildTriggers(t *testing.T) {
	needInterpreters(t, "s390x")
	sandbox.Require(t, "rpm", "rpm")
	dir := t.TempDir()
	decl := filepath.Join(dir, "triggers.yaml")
	// The body is a file of the repository, with package macros.
	if err := os.WriteFile(decl, []byte(`triggers:
  - packages: [qemu-user-static-go]
    kind: transfiletriggerin
    priority: 1000600
    prefixes: [/usr/lib/binfmt.d, /etc/binfmt.d]
    script: scriptlets/postun.sh
`), 0o644); err != nil {
		t.Fatal(err)
	}
	res := build(t, assemble.Options{CPUs: []string{"s390x"}, Triggers: decl, Version: "4.5", Release: "6"})
	out, err := exec.Command("rpm", "-qp", "--filetriggers", res.Path).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm -qp --filetriggers: %v\n%s", err, out)
	}
	want := "transfiletriggerin scriptlet (using /bin/sh) -- /etc/binfmt.d, /usr/lib/binfmt.d\n" +
		strings.TrimRight(expanded(t, "postun.sh", "4.5", "6"), "\n") + "\n"
	if string(out) != want {
		t.Errorf("rpm -qp --filetriggers:\n%s\nwant:\n%s", out, want)
	}
	out, err = exec.Command("rpm", "-qp", "--qf", "[%{TRANSFILETRIGGERPRIORITIES}\n]", res.Path).CombinedOutput()
	if err != nil || string(out) != "1000600\n" {
		t.Errorf("priority: %v %q", err, out)
	}
}

func TestBuildTriggersErrors(t *testing.T) {
	needInterpreters(t, "s390x")
	for _, tc := range []struct{ decl, want string }{
		{"triggers:\n  - packages: [nobody]\n    kind: transfiletriggerin\n    prefixes: [/usr/lib/binfmt.d]\n    script: scriptlets/post.sh\n", `package "nobody" is not built`},
		{"triggers:\n  - packages: [qemu-user-static-go]\n    kind: transfiletriggerin\n    prefixes: [/usr/lib/binfmt.d]\n    script: scriptlets/missing.sh\n", "reading its script"},
		{"triggers:\n  - packages: [qemu-user-static-go]\n    kind: filetrigger\n    prefixes: [/x]\n    script: scriptlets/post.sh\n", `kind "filetrigger"`},
		{"triggers:\n  - packages: [qemu-user-static-go]\n    kind: filetriggerin\n    prefix: [/x]\n    script: scriptlets/post.sh\n", "field prefix not found"},
	} {
		decl := filepath.Join(t.TempDir(), "triggers.yaml")
		if err := os.WriteFile(decl, []byte(tc.decl), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := assemble.Build(t.Context(), assemble.Options{CPUs: []string{"s390x"}, Triggers: decl, Binfmtctl: helper(t),
			OutputDir: t.TempDir(), TempDir: t.TempDir(), SourceDateEpoch: epoch})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.decl, err, tc.want)
		}
	}
}
