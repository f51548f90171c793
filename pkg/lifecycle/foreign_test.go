package lifecycle_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

// TestForeignRecordShellAndGoAgree checks issue 16's point 10 from both
// readers of a record at once, on the real kernel: for each way a record
// can be spoiled, binfmtctl (Store.Claims) trusts its claim exactly when
// the shell %postun, which runs once binfmtctl is gone, acts on it, and
// neither ever touches an entry the record does not soundly claim.
func TestForeignRecordShellAndGoAgree(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { foreignRecordShellAndGoAgreeOn(t, st) })
	}
}

func foreignRecordShellAndGoAgreeOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	rec := filepath.Join(state, "pkg-f")
	postun := scriptlets.Render("pkg-f", "1", "1").Postun
	if _, err := os.Stat(r.Path("/usr/bin/binfmtctl")); err == nil {
		t.Fatal("the root has /usr/bin/binfmtctl: the shell half of the postun scriptlet would not run")
	}

	const lineA = ":forn-a:M::FORNA::/bin/true:"
	const lineB = ":forn-b:M::FORNB::/bin/true:" // claimed by nobody
	claim := func(line string) string {
		e, err := binfmt.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		c := lifecycle.Claims{}
		c.Add(e)
		return string(c.Render())
	}
	sound := claim(lineA)
	header, bodyA, _ := strings.Cut(sound, "\n")
	_, bodyB, _ := strings.Cut(claim(lineB), "\n")
	bodyB = strings.Replace(bodyB, "== forn-b\n", "== ../binfmt_misc/forn-b\n", 1)
	write := func(data string) func() error {
		return func() error { return os.WriteFile(rec, []byte(data), 0o644) }
	}
	for _, tc := range []struct {
		name    string
		spoil   func() error
		trusted bool // whether the claim on forn-a is to be acted on
	}{
		{"a sound record", write(sound), true},
		{"owned by uid 1000", func() error { write(sound)(); return os.Chown(rec, 1000, 1000) }, false},
		{"mode 0666", func() error { write(sound)(); return os.Chmod(rec, 0o666) }, false},
		{"mode 0602", func() error { write(sound)(); return os.Chmod(rec, 0o602) }, false},
		{"the directory owned by uid 1000", func() error { write(sound)(); return os.Chown(state, 1000, 1000) }, false},
		{"the directory mode 0777", func() error { write(sound)(); return os.Chmod(state, 0o777) }, false},
		{"a symlink to a sound record", func() error {
			other := r.Path("/var/lib/elsewhere")
			if err := os.WriteFile(other, []byte(sound), 0o644); err != nil {
				return err
			}
			return os.Symlink(other, rec)
		}, false},
		{"a FIFO", func() error { return unix.Mkfifo(rec, 0o644) }, false},
		{"a directory", func() error { return os.Mkdir(rec, 0o755) }, false},
		// Before: the shell acted on claims without a header, which
		// binfmtctl does not trust at all.
		{"no header", write(bodyA), false},
		{"another version", write("# binfmtctl record 2\n" + bodyA), false},
		// Before: the shell wrote -1 to binfmt_misc/status, which
		// unregisters every entry, forn-b included.
		{"a claim named status", write(header + "\n== status\nenabled\n" + bodyA), true},
		// Before: the shell followed the "/" and removed forn-b.
		{"a claim through ..", write(header + "\n" + bodyB + bodyA), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &binfmt.FS{Dir: bm}
			for n, l := range map[string]string{"forn-a": lineA, "forn-b": lineB} {
				if err := fs.RegisterString(n, l); err != nil && !errors.Is(err, binfmt.ErrExists) {
					t.Fatal(err)
				}
			}
			defer clearEntries(t, bm, "forn-a", "forn-b")
			os.RemoveAll(state)
			defer os.RemoveAll(state)
			defer os.Remove(r.Path("/var/lib/elsewhere"))
			if err := os.Mkdir(state, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(); err != nil {
				t.Fatal(err)
			}
			live, err := fs.Entry("forn-a")
			if err != nil {
				t.Fatal(err)
			}
			c, err := lifecycle.Store{Dir: state}.Claims("pkg-f")
			goTrusts := c.Owns(live)
			t.Logf("binfmtctl reads: %v, %v", c.Names(), err)
			o := runIn(t, r, nil, nil, "/bin/sh", "-c", postun, "postun", "0")
			t.Logf("the shell %%postun: %s", o)
			got := table(t, bm)
			shellActs := got["forn-a"] == ""
			if goTrusts != tc.trusted || shellActs != tc.trusted {
				t.Errorf("a record with %s: binfmtctl trusts its claim: %v, the shell %%postun acts on it: %v; want both %v", tc.name, goTrusts, shellActs, tc.trusted)
			}
			if got["forn-b"] == "" {
				t.Errorf("a record with %s: the shell %%postun removed forn-b, which the record does not soundly claim\n%s", tc.name, o)
			}
			if !tc.trusted && !strings.Contains(o.out, "binfmtctl: ") {
				t.Errorf("a record with %s: the shell %%postun refused it without a word\n%s", tc.name, o)
			}
		})
	}
}
