package binfmtctl_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmtctl"
)

// terminal stands for rpm's standard input under rpm.execute: dnf's,
// perhaps a terminal, which a read would wait on for ever.
type terminal struct{ t *testing.T }

func (r terminal) Read([]byte) (int, error) {
	r.t.Errorf("binfmtctl trigger read standard input, rpm's own under a Lua trigger: it would wait on the terminal")
	return 0, os.ErrClosed
}

// TestTriggerFiles: the files come from the arguments after PID (the Lua
// bodies, rpm.next_file); a numeric PID without any reads them from
// standard input (older packages' shell bodies); "-" never reads standard
// input.
func TestTriggerFiles(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "etc/binfmt.d/a.conf"), ":a:M::AAAA::/bin/a:\n")
	writeFile(t, filepath.Join(root, "etc/binfmt.d/b.conf"), ":b:M::BBBB::/bin/b:\n")
	state := filepath.Join(root, "run/binfmtctl/transaction")
	leaving := func(t *testing.T) string {
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, l := range strings.Split(string(b), "\n") {
			if f, ok := strings.CutPrefix(l, "file "); ok {
				files = append(files, f)
			}
		}
		return strings.Join(files, " ")
	}
	g := []string{"--root", root, "--binfmt-dir", dir, "trigger"}

	defer binfmtctl.SetTriggerStdin(terminal{t})()
	if r := run(append(g, "early", "-")...); r.code != 0 {
		t.Errorf("trigger early -: %s", r)
	}
	if r := run(append(g, "leaving", "-", "/etc/binfmt.d/a.conf", "/etc/binfmt.d/b.conf")...); r.code != 0 {
		t.Errorf("trigger leaving - FILES: %s", r)
	}
	if got := leaving(t); got != "/etc/binfmt.d/a.conf /etc/binfmt.d/b.conf" {
		t.Errorf("trigger leaving - FILES recorded %q, want both files", got)
	}

	// The shell form, another transaction (this process as its rpm).
	defer binfmtctl.SetTriggerStdin(strings.NewReader("/etc/binfmt.d\n/etc/binfmt.d/b.conf\n"))()
	if r := run(append(g, "leaving", strconv.Itoa(os.Getpid()))...); r.code != 0 {
		t.Errorf("trigger leaving PID < files: %s", r)
	}
	if got := leaving(t); got != "/etc/binfmt.d/b.conf" {
		t.Errorf("trigger leaving PID < files recorded %q, want the file on standard input", got)
	}
}
