package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestLookPathIgnoresRelativeDirs: root running "binfmtctl sync" from a
// directory a user can write (/tmp, a home) with an empty or relative
// element in $PATH must not run that user's "rpm" as root; os/exec
// refuses such results (exec.ErrDot) for the same reason.
func TestLookPathIgnoresRelativeDirs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rpm"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "rpm"), []byte("#!/bin/sh\n"), 0o755)
	t.Chdir(dir)
	for _, path := range []string{"/nonexistent:", ":/nonexistent", ".", "bin", "/nonexistent::/nonexistent2"} {
		t.Setenv("PATH", path)
		got, err := lookPath("rpm")
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("PATH=%q: lookPath(rpm) = %q, %v; want not found (the working directory's rpm is not root's to run)", path, got, err)
		}
	}
	abs := filepath.Join(dir, "bin")
	t.Setenv("PATH", ":"+abs)
	if got, err := lookPath("rpm"); err != nil || got != filepath.Join(abs, "rpm") {
		t.Errorf("PATH=%q: lookPath(rpm) = %q, %v; want %s", ":"+abs, got, err, filepath.Join(abs, "rpm"))
	}
}
