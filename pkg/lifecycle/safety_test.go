package lifecycle_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
	"github.com/qemu-user-static-go/qemu-user-static-go/scriptlets"
)

// TestHostileInput feeds the hooks what an attacker or a broken package
// could put in front of them: entry names that are paths or control
// files, symlinks and foreign owners in the state directory, shell
// metacharacters in the package name, and a C interpreter in a
// group-writable directory. Nothing is ever followed, run or registered
// unsafely, and every refusal is one line.
//
// It runs on each stack (subtests host and sid): rpm 4.18 and dnf 4, and
// Debian sid's rpm 6.1 and dnf5.
func TestHostileInput(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { hostileInput(t, st) })
	}
}

func hostileInput(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	ctl := "/usr/local/bin/binfmtctl"
	copyFile(t, helper, r.Path(ctl), 0o755)

	const (
		lineS1 = ":s-1:M::HOSTS1::/usr/libexec/pkg-s/interp:F"
		lineS2 = "|s-2|E||hosts2||/usr/libexec/pkg-s/interp|"
	)
	s := testPkg{name: "pkg-s", version: "1.0", self: true, confs: map[string]string{"s.conf": lineS1 + "\n" + lineS2 + "\n"}}
	rpmS := s.build(t, helper)
	entS := entries(t, lineS1, lineS2)

	fs := &binfmt.FS{Dir: bm}
	admin := ":admin-h:E::adminh::/bin/true:"
	if err := fs.RegisterString("admin-h", admin); err != nil {
		t.Fatal(err)
	}
	others := table(t, bm)
	// A record claiming the administrator's entry: whoever follows a link
	// to it would unregister admin-h.
	hostile := lifecycle.Claims{}
	for _, l := range []string{admin, lineS1, lineS2} {
		e, _ := binfmt.ParseLine(l)
		hostile.Add(e)
	}

	t.Run("entry names that are paths or control files", func(t *testing.T) {
		conf := ":n-ok:E::nok::/usr/libexec/pkg-n/interp:\n" +
			":a/b:E::x1::/usr/libexec/pkg-n/interp:\n" +
			":..:E::x2::/usr/libexec/pkg-n/interp:\n" +
			":register:E::x3::/usr/libexec/pkg-n/interp:\n" +
			":status:E::x4::/usr/libexec/pkg-n/interp:\n" +
			":.:E::x5::/usr/libexec/pkg-n/interp:\n" +
			"/../etc/x/E//x6//bin/sh/\n"
		n := testPkg{name: "pkg-n", version: "1.0", self: true, confs: map[string]string{"n.conf": conf}}
		status, _ := os.ReadFile(filepath.Join(bm, "status"))
		out := must(t, "dnf install")(r.DNF("install", n.build(t, helper)))
		checkTable(t, "dnf install with bad names", bm, merge(others, entries(t, ":n-ok:E::nok::/usr/libexec/pkg-n/interp:")), out)
		if now, _ := os.ReadFile(filepath.Join(bm, "status")); !bytes.Equal(now, status) {
			t.Errorf("binfmt_misc's status changed to %q", now)
		}
		for i, why := range []string{`name "a/b" contains '/'`, `name ".." is not allowed`, `name "register" is a binfmt_misc control file`,
			`name "status" is a binfmt_misc control file`, `name "." is not allowed`, "fields separated by"} {
			at := fmt.Sprintf("/usr/lib/binfmt.d/n.conf:%d: ", i+2)
			lines := 0
			for _, l := range notices(out) {
				if strings.Contains(l, at) {
					lines++
					if !strings.Contains(l, why) {
						t.Errorf("%s is refused with %q, want it to say %s", at, l, why)
					}
				}
			}
			if lines != 1 {
				t.Errorf("%s is named on %d lines, want 1:\n%s", at, lines, out)
			}
		}
		out = must(t, "dnf remove")(r.DNF("remove", "pkg-n"))
		checkTable(t, "dnf remove pkg-n", bm, others, out)
	})

	// Each case below starts from pkg-s installed with --noscripts, spoils
	// the state directory, runs the hooks through the command line and in
	// an erase transaction, and checks that nothing was read through a
	// link, written through one, or unregistered on its say-so.
	spoils := []struct {
		name  string
		spoil func(t *testing.T) (check func(t *testing.T))
		why   string
	}{
		{
			name: "state directory is a symlink",
			spoil: func(t *testing.T) func(t *testing.T) {
				elsewhere := r.Path("/var/lib/elsewhere")
				os.Mkdir(elsewhere, 0o755)
				os.WriteFile(filepath.Join(elsewhere, "pkg-s"), hostile.Render(), 0o644)
				os.Rename(state, state+".real")
				os.Symlink("/var/lib/elsewhere", state)
				return func(t *testing.T) {
					if got, _ := os.ReadFile(filepath.Join(elsewhere, "pkg-s")); !bytes.Equal(got, hostile.Render()) {
						t.Errorf("the record behind the link changed:\n%s", got)
					}
					if ents, _ := os.ReadDir(elsewhere); len(ents) != 1 {
						t.Errorf("files were written behind the link: %v", ents)
					}
					os.Remove(state)
					os.Rename(state+".real", state)
					os.RemoveAll(elsewhere)
				}
			},
			why: "is a symlink",
		},
		{
			name: "record is a symlink",
			spoil: func(t *testing.T) func(t *testing.T) {
				victim := r.Path("/etc/victim")
				os.WriteFile(victim, hostile.Render(), 0o600)
				rec := filepath.Join(state, "pkg-s")
				good, _ := os.ReadFile(rec)
				os.Remove(rec)
				os.Symlink("/etc/victim", rec)
				return func(t *testing.T) {
					if got, _ := os.ReadFile(victim); !bytes.Equal(got, hostile.Render()) {
						t.Errorf("the file behind the link changed:\n%s", got)
					}
					os.Remove(rec)
					os.WriteFile(rec, good, 0o644)
					os.Remove(victim)
				}
			},
			why: "is a symlink",
		},
		{
			name: "state directory owned by another user",
			spoil: func(t *testing.T) func(t *testing.T) {
				os.WriteFile(filepath.Join(state, "pkg-s"), hostile.Render(), 0o644)
				if err := os.Chown(state, 1000, 1000); err != nil {
					t.Skipf("cannot chown to uid 1000 in the namespace: %v", err)
				}
				return func(t *testing.T) {
					os.Chown(state, 0, 0)
					os.WriteFile(filepath.Join(state, "pkg-s"), renderOf(t, entS), 0o644)
				}
			},
			why: "owned by uid 1000",
		},
		{
			name: "state directory writable by others",
			spoil: func(t *testing.T) func(t *testing.T) {
				os.WriteFile(filepath.Join(state, "pkg-s"), hostile.Render(), 0o644)
				os.Chmod(state, 0o777)
				return func(t *testing.T) {
					os.Chmod(state, 0o755)
					os.WriteFile(filepath.Join(state, "pkg-s"), renderOf(t, entS), 0o644)
				}
			},
			why: "writable by group or others",
		},
	}
	for _, sp := range spoils {
		t.Run(sp.name, func(t *testing.T) {
			must(t, "rpm -i")(r.RPM("-i", rpmS))
			checkTable(t, "rpm -i", bm, merge(others, entS), "")
			check := sp.spoil(t)
			for _, args := range [][]string{
				{"hook", "post", "pkg-s-1.0-1", "1"},
				{"hook", "preun", "pkg-s-1.0-1", "0"},
				{"sync", "pkg-s"},
			} {
				o := runIn(t, r, nil, nil, ctl, args...)
				if o.code != 1 {
					t.Errorf("%q: %s, want exit 1", args, o)
				}
				oneNotice(t, fmt.Sprintf("%q", args), o.out, "unsafe state directory", sp.why)
				checkTable(t, fmt.Sprintf("%q", args), bm, merge(others, entS), o.out)
			}
			// The erase transaction succeeds; neither the %preun (binfmtctl)
			// nor the %postun (sh, binfmtctl is gone) acts on the record.
			out := must(t, "dnf remove")(r.DNF("remove", "pkg-s"))
			ns := notices(out)
			if len(ns) != 2 || !strings.Contains(ns[0], sp.why) || !strings.Contains(ns[1], "refusing") {
				t.Errorf("dnf remove: want one line from %%preun saying %q and one from %%postun refusing, got:\n%s", sp.why, out)
			}
			checkTable(t, "dnf remove", bm, merge(others, entS), out)
			check(t)
			// Once the administrator has put the directory right, sync
			// finishes the erase.
			out = runIn(t, r, nil, nil, ctl, "sync", "pkg-s").out
			checkTable(t, "sync after the state directory was repaired", bm, others, out)
			assertGone(t, r, "/var/lib/binfmtctl")
		})
	}

	t.Run("temporary record is a symlink", func(t *testing.T) {
		must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", rpmS))
		victim := r.Path("/etc/victim-tmp")
		os.WriteFile(victim, []byte("precious\n"), 0o600)
		os.Mkdir(state, 0o755)
		os.Symlink("/etc/victim-tmp", filepath.Join(state, ".pkg-s.tmp"))
		o := runIn(t, r, nil, nil, ctl, "hook", "post", "pkg-s-1.0-1", "1")
		oneNotice(t, "hook post", o.out, ".pkg-s.tmp", "too many levels of symbolic links")
		// No record, so nothing was registered.
		checkTable(t, "hook post", bm, others, o.out)
		if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
			t.Errorf("the file behind the link was written: %q", got)
		}
		os.Remove(filepath.Join(state, ".pkg-s.tmp"))
		o = runIn(t, r, nil, nil, ctl, "hook", "post", "pkg-s-1.0-1", "1")
		checkTable(t, "hook post once the link is gone", bm, merge(others, entS), o.out)
		out := must(t, "rpm -e")(r.RPM("-e", "pkg-s"))
		checkTable(t, "rpm -e", bm, others, out)
	})

	t.Run("shell metacharacters in the package", func(t *testing.T) {
		must(t, "rpm -i")(r.RPM("-i", rpmS))
		before := table(t, bm)
		record, _ := os.ReadFile(filepath.Join(state, "pkg-s"))
		for _, nevra := range []string{
			"a;touch /tmp/pwned-1-1",
			"$(touch /tmp/pwned)-1-1",
			"`touch /tmp/pwned`-1-1",
			"pkg-s-1.0-1'; touch /tmp/pwned; '",
			"pkg-s-1.0-1 && touch /tmp/pwned",
			"pkg-s|touch /tmp/pwned-1-1",
			"--root=/tmp-1-1",
			"-e-1-1",
			"*-*-*",
			"pkg-s\n-1.0-1",
		} {
			for _, args := range [][]string{
				{"hook", "post", nevra, "1"},
				{"hook", "preun", nevra, "0"},
				{"hook", "postun", nevra, "0"},
				{"sync", nevra},
			} {
				o := runIn(t, r, nil, nil, ctl, args...)
				if len(notices(o.out)) > 1 {
					t.Errorf("%q: more than one line:\n%s", args, o)
				}
				// 2 is a usage error: a NEVRA such as "-e-1-1" reads as a
				// flag. Nothing else ran.
				if o.code > 2 || o.signal != 0 {
					t.Errorf("%q: %s", args, o)
				}
			}
		}
		for _, p := range []string{r.Path("/tmp/pwned"), "/tmp/pwned", r.Path("/tmp/pwned-1-1")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists: a package name reached a shell", p)
			}
		}
		checkTable(t, "hooks with shell metacharacters", bm, before, "")
		if now, _ := os.ReadFile(filepath.Join(state, "pkg-s")); !bytes.Equal(now, record) {
			t.Errorf("the record of pkg-s changed:\n%s", now)
		}
		if ents, _ := os.ReadDir(state); len(ents) != 1 {
			t.Errorf("the state directory holds %v, want only pkg-s", ents)
		}
		out := must(t, "rpm -e")(r.RPM("-e", "pkg-s"))
		checkTable(t, "rpm -e", bm, others, out)
	})

	// Issue 16 point 9, the binfmt.d side: the administrator's
	// /etc/binfmt.d/s.conf, which overrides the package's file, is a FIFO.
	// Opened without O_NONBLOCK it blocked %post and %preun until killed,
	// and rpm ignores SIGTERM during a transaction. The transaction must
	// end, and %post must say which file it could not read.
	t.Run("an override that is a FIFO", func(t *testing.T) {
		fifo := r.Path("/etc/binfmt.d/s.conf")
		os.MkdirAll(filepath.Dir(fifo), 0o755)
		if err := unix.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(fifo)
		bounded := func(step string, f func() (string, error)) string {
			t.Helper()
			type res struct {
				out string
				err error
			}
			done := make(chan res, 1)
			go func() { out, err := f(); done <- res{out, err} }()
			select {
			case r := <-done:
				return must(t, step)(r.out, r.err)
			case <-time.After(90 * time.Second):
				// The blocked scriptlet dies with the namespace.
				t.Fatalf("%s did not end within 90 s: a scriptlet blocks on the FIFO /etc/binfmt.d/s.conf", step)
				return ""
			}
		}
		out := bounded("dnf install", func() (string, error) { return r.DNF("install", rpmS) })
		if !strings.Contains(out, `"/etc/binfmt.d/s.conf": it is a FIFO, not a regular file`) {
			t.Errorf("dnf install does not name the FIFO:\n%s", out)
		}
		checkTable(t, "dnf install", bm, others, out)
		out = bounded("dnf remove", func() (string, error) { return r.DNF("remove", "pkg-s") })
		checkTable(t, "dnf remove", bm, others, out)

		// Installed while the file was readable, erased once it is a
		// FIFO.
		os.Remove(fifo)
		out = bounded("dnf install", func() (string, error) { return r.DNF("install", rpmS) })
		checkTable(t, "dnf install without the FIFO", bm, merge(others, entS), out)
		if err := unix.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		// Whether %preun reads the file depends on how it decides what
		// stays (an erase keeps what a file on disk still defines); that
		// it ends, and touches no one else's entry, does not.
		bounded("dnf remove", func() (string, error) { return r.DNF("remove", "pkg-s") })
		live := table(t, bm)
		for name, want := range others {
			if live[name] != want {
				t.Errorf("dnf remove with the FIFO changed %s:\n%s\nwant:\n%s", name, live[name], want)
			}
		}
		t.Logf("after dnf remove with the FIFO: %v", live)
		// What is left is pkg-s's, now of no package: the next subtests
		// start from the same table.
		for name := range entS {
			fs.Unregister(name)
		}
		os.RemoveAll(state)
	})

	t.Run("C interpreter in a group-writable directory", func(t *testing.T) {
		// Like testPkg, but the directory of the interpreter is mode 0775.
		sc := scriptlets.Render("pkg-u", "1.0", "1")
		spec := sandbox.PackageSpec{
			Name: "pkg-u", Version: "1.0", Arch: "x86_64",
			Post: sc.Post, PreUn: sc.Preun, PostUn: sc.Postun,
			Files: []sandbox.File{
				{Dst: "/usr/libexec/pkg-u", Type: "dir", Mode: 0o775},
				{Dst: "/usr/libexec/pkg-u/interp", Src: "/bin/true", Mode: 0o755},
				{Dst: "/usr/bin/binfmtctl", Src: helper, Mode: 0o755},
				{Dst: "/usr/lib/binfmt.d/u.conf", Mode: 0o644, Content: []byte(
					":u-c:M::UNSAFEC::/usr/libexec/pkg-u/interp:C\n:u-ok:M::UNSAFEOK::/usr/libexec/pkg-u/interp:\n")},
			},
		}
		entOK := entries(t, ":u-ok:M::UNSAFEOK::/usr/libexec/pkg-u/interp:")
		out := must(t, "dnf install")(r.DNF("install", sandbox.BuildRPM(t, spec)))
		oneNotice(t, "dnf install", out, "/usr/lib/binfmt.d/u.conf:1", "unsafe interpreter", `"/usr/libexec/pkg-u" is writable by group or others (mode 0775)`)
		checkTable(t, "dnf install", bm, merge(others, entOK), out)
		checkRecord(t, "dnf install", state, "pkg-u", entOK)
		out = must(t, "dnf remove")(r.DNF("remove", "pkg-u"))
		checkTable(t, "dnf remove", bm, others, out)
	})
}

// renderOf renders the record claiming the entry files in es.
func renderOf(t *testing.T, es map[string]string) []byte {
	t.Helper()
	c := lifecycle.Claims{}
	for name, status := range es {
		e, err := lifecycle.ParseClaim(name, []byte(status))
		if err != nil {
			t.Fatal(err)
		}
		c.Add(e)
	}
	return c.Render()
}
