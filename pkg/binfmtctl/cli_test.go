package binfmtctl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmtctl"
)

// result is what one binfmtctl invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// run runs binfmtctl in this process.
func run(args ...string) result {
	var out, errb bytes.Buffer
	code := binfmtctl.Run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// oneLineError checks that r failed with code and printed exactly one line
// on stderr, containing each of parts.
func oneLineError(t *testing.T, r result, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\n%s", r.code, code, r)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "binfmtctl: ") {
		t.Errorf("stderr is not one line starting with binfmtctl: %q", r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr %q does not contain %q", r.stderr, p)
		}
	}
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNotMounted needs no kernel: a plain directory is not binfmt_misc,
// and every command that needs the table says so in one line.
func TestNotMounted(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "x.conf")
	writeFile(t, conf, ":x:E::x::/bin/sh:\n")
	for kind, plain := range map[string]string{"plain": dir, "missing": filepath.Join(dir, "missing")} {
		for _, args := range [][]string{
			{"register", conf},
			{"unregister", "x"},
			{"enable", "x"},
			{"disable", "x"},
			{"status"},
			{"status", "x"},
			{"find", conf},
		} {
			r := run(append([]string{"--binfmt-dir", plain, "--state-dir", filepath.Join(dir, "state")}, args...)...)
			t.Run(kind+"/"+args[0], func(t *testing.T) {
				want := []string{"binfmt_misc is not mounted", `"` + plain + `"`}
				// Only register has --mount, so only it suggests it.
				if args[0] == "register" {
					want = append(want, "--mount")
				}
				oneLineError(t, r, 1, want...)
			})
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		out  string // part of stdout
		err  string // part of stderr
	}{
		{[]string{"--help"}, 0, "usage: binfmtctl", ""},
		{[]string{"-h"}, 0, "usage: binfmtctl", ""},
		{[]string{"help"}, 0, "usage: binfmtctl", ""},
		{[]string{"--version"}, 0, "binfmtctl " + binfmtctl.Version + "\n", ""},
		{[]string{"register", "--help"}, 0, "usage: binfmtctl [global flags] register", ""},
		{nil, 2, "", "usage: binfmtctl"},
		{[]string{"frobnicate"}, 2, "", `binfmtctl: unknown command "frobnicate"`},
		{[]string{"--frobnicate"}, 2, "", "unknown flag: --frobnicate"},
		{[]string{"status", "--frobnicate"}, 2, "", "usage: binfmtctl status"},
		{[]string{"register"}, 2, "", "register: no FILE or NAME given"},
		{[]string{"unregister"}, 2, "", "unregister: no NAME given"},
		{[]string{"enable"}, 2, "", "enable: no NAME given"},
		{[]string{"disable"}, 2, "", "disable: no NAME given"},
		{[]string{"find"}, 2, "", "find: want exactly one FILE"},
		{[]string{"find", "a", "b"}, 2, "", "find: want exactly one FILE"},
		{[]string{"cat-config", "x"}, 2, "", "cat-config: takes no arguments"},
	} {
		r := run(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.out) || !strings.Contains(r.stderr, tt.err) {
			t.Errorf("binfmtctl %q: %s\nwant exit %d, stdout with %q, stderr with %q", tt.args, r, tt.code, tt.out, tt.err)
		}
		if tt.code == 0 && r.stderr != "" {
			t.Errorf("binfmtctl %q succeeded with stderr %q", tt.args, r.stderr)
		}
	}
}

func TestCatConfig(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/a.conf"), ":a-usr:E::a::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "etc/binfmt.d/a.conf"), "# admin's\n:a-etc:E::a::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/b.conf"), ":b:E::b::/bin/sh:\n:bad:E::b::/bin/sh:Q\n")
	writeFile(t, filepath.Join(root, "usr/lib/binfmt.d/c.conf"), ":c:E::c::/bin/sh:\n")
	writeFile(t, filepath.Join(root, "run/binfmt.d/c.conf"), "")
	r := run("--root", root, "cat-config")
	// As systemd-binfmt --cat-config: the files as written, bad lines
	// included, masks by their header alone, no blank line at the end.
	want := `# /etc/binfmt.d/a.conf
# admin's
:a-etc:E::a::/bin/sh:

# /usr/lib/binfmt.d/b.conf
:b:E::b::/bin/sh:
:bad:E::b::/bin/sh:Q

# /run/binfmt.d/c.conf
`
	if r.stdout != want {
		t.Errorf("cat-config stdout\n%s\nwant\n%s", r.stdout, want)
	}
	oneLineError(t, r, 1, "/usr/lib/binfmt.d/b.conf:2: invalid entry: unknown flag 'Q'")
}
