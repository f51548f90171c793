package binfmt_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/binfmt")

// goldenDir holds inputs and golden outputs shared with the CLI tests.
var goldenDir = filepath.Join("..", "..", "testdata", "binfmt")

// renderLines parses testdata/binfmt/render.conf, which must be free of
// errors.
func renderLines(t testing.TB) []binfmt.Line {
	t.Helper()
	lines, errs := binfmt.ParseFile(filepath.Join(goldenDir, "render.conf"))
	for _, err := range errs {
		t.Errorf("render.conf: %v", err)
	}
	if len(lines) == 0 {
		t.Fatal("render.conf has no lines")
	}
	return lines
}

// checkGolden compares got with the golden file name, or rewrites it
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test ./pkg/binfmt -run %s -update to create it): %v", t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (run go test ./pkg/binfmt -run %s -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestRegisterStringGolden renders each line of render.conf as a
// register string, and checks that each rendering parses back to the
// same entry.
func TestRegisterStringGolden(t *testing.T) {
	var b bytes.Buffer
	for _, l := range renderLines(t) {
		s := l.RegisterString()
		fmt.Fprintf(&b, "# render.conf:%d %s\n%s\n", l.Num, l.Name, s)
		back, err := binfmt.ParseLine(s)
		if err != nil {
			t.Errorf("render.conf:%d: rendered %q does not parse: %v", l.Num, s, err)
			continue
		}
		if !binfmt.SameDefinition(back, l.Entry) || back.Name != l.Name {
			t.Errorf("render.conf:%d: rendered %q parses to %+v, want %+v", l.Num, s, back, l.Entry)
		}
	}
	checkGolden(t, "render.register.golden", b.Bytes())
}

// TestStatusGolden renders each line of render.conf as the kernel's entry
// file. The kernel test TestKernelStatusMatchesGolden checks the same
// renderings against real entry files.
func TestStatusGolden(t *testing.T) {
	var b bytes.Buffer
	for _, l := range renderLines(t) {
		fmt.Fprintf(&b, "# render.conf:%d %s\n%s\n", l.Num, l.Name, l.Status())
	}
	checkGolden(t, "render.status.golden", b.Bytes())
}
