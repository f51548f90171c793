package lifecycle_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestFaults runs transactions while something is broken: binfmt_misc
// read-only, missing or refusing writes, an F interpreter missing, the
// record damaged, the state directory full or read-only, two hooks at
// once, and erases that skip scriptlets. In every case the transaction
// exits 0, the user gets one line per scriptlet saying why, and a later
// hook or "binfmtctl sync" leaves the kernel table exactly right.
//
// It runs on each stack (subtests host and sid): rpm 4.18 and dnf 4, and
// Debian sid's rpm 6.1 and dnf5.
func TestFaults(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { faults(t, st) })
	}
}

func faults(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelper(t)
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")

	const (
		lineFA  = ":f-a:M::FLTA::/usr/libexec/pkg-f/interp:F"
		lineFB1 = "|f-b|E||fltb||/usr/libexec/pkg-f/interp|"
		lineFB2 = "|f-b|E||fltb2||/usr/libexec/pkg-f/interp|"
		lineFC  = ":f-c:M:4:FLTC::/usr/libexec/pkg-f/interp:F"
		// pkg-m's first entry names an interpreter no package ships.
		lineMF  = ":m-f:M::FLTMF::/usr/libexec/missing-m/interp:F"
		lineMOK = ":m-ok:M::FLTMOK::/usr/libexec/pkg-m/interp:F"
	)
	f1 := testPkg{name: "pkg-f", version: "1.0", self: true, confs: map[string]string{"f-a.conf": lineFA + "\n", "f-b.conf": lineFB1 + "\n"}}
	f2 := testPkg{name: "pkg-f", version: "2.0", self: true, confs: map[string]string{"f-b.conf": lineFB2 + "\n", "f-c.conf": lineFC + "\n"}}
	m := testPkg{name: "pkg-m", version: "1.0", confs: map[string]string{"m.conf": lineMF + "\n" + lineMOK + "\n"}}
	rpmF1, rpmF2, rpmM := f1.build(t, helper), f2.build(t, helper), m.build(t, helper)
	entF1, entF2 := entries(t, lineFA, lineFB1), entries(t, lineFB2, lineFC)

	// The administrator's own entries, one disabled, defined in
	// /etc/binfmt.d so that prune leaves them alone too.
	local := []string{":admin-e:E::adm::/bin/true:", ":admin-m:M::FLTA::/bin/true:"}
	os.MkdirAll(r.Path("/etc/binfmt.d"), 0o755)
	os.WriteFile(r.Path("/etc/binfmt.d/local.conf"), []byte(strings.Join(local, "\n")+"\n"), 0o644)
	fs := &binfmt.FS{Dir: bm}
	for _, s := range local {
		e, _ := binfmt.ParseLine(s)
		if err := fs.RegisterString(e.Name, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Disable("admin-m"); err != nil {
		t.Fatal(err)
	}
	others := table(t, bm)

	// Another copy of binfmtctl, for after pkg-f (and its binfmtctl) is
	// gone, as the user would use.
	ctl := "/usr/local/bin/binfmtctl"
	copyFile(t, helper, r.Path(ctl), 0o755)
	sync := func(t *testing.T, step string, pkg string) string {
		t.Helper()
		o := runIn(t, r, nil, nil, ctl, "sync", pkg)
		if o.code != 0 {
			t.Fatalf("%s: binfmtctl sync %s: %s", step, pkg, o)
		}
		return o.out
	}
	// reasons checks the lines a transaction printed for the user: at
	// least one, at most one per scriptlet that ran, each giving reason.
	reasons := func(t *testing.T, step, out string, scriptlets int, reason string) {
		t.Helper()
		ns := notices(out)
		t.Logf("%s, the user reads:\n%s", step, strings.Join(ns, "\n"))
		if len(ns) == 0 || len(ns) > scriptlets {
			t.Errorf("%s: want one line of explanation per scriptlet (%d), got %d:\n%s", step, scriptlets, len(ns), out)
		}
		for _, n := range ns {
			if !strings.Contains(strings.ToLower(n), strings.ToLower(reason)) {
				t.Errorf("%s: the explanation %q does not say %q", step, n, reason)
			}
		}
	}

	t.Run("binfmt_misc read-only at install", func(t *testing.T) {
		ns.RemountReadOnly(bm)
		out := must(t, "dnf install")(r.DNF("install", rpmF1))
		ns.RemountReadWrite(bm)
		reasons(t, "dnf install with binfmt_misc read-only", out, 1, "read-only")
		checkTable(t, "dnf install with binfmt_misc read-only", bm, others, out)
		out = sync(t, "binfmt_misc writable again", "pkg-f")
		checkTable(t, "sync", bm, merge(others, entF1), out)
		checkRecord(t, "sync", state, "pkg-f", entF1)
	})

	t.Run("binfmt_misc read-only at erase", func(t *testing.T) {
		ns.RemountReadOnly(bm)
		out := must(t, "dnf remove")(r.DNF("remove", "pkg-f"))
		ns.RemountReadWrite(bm)
		reasons(t, "dnf remove with binfmt_misc read-only", out, 2, "read-only")
		checkTable(t, "dnf remove with binfmt_misc read-only", bm, merge(others, entF1), out)
		checkRecord(t, "dnf remove with binfmt_misc read-only", state, "pkg-f", entF1)
		out = sync(t, "binfmt_misc writable again", "pkg-f")
		checkTable(t, "sync", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl")
	})

	t.Run("binfmt_misc missing at erase", func(t *testing.T) {
		must(t, "rpm -i")(r.RPM("-i", rpmF1))
		ns.Unmount(bm)
		out := must(t, "dnf remove")(r.DNF("remove", "pkg-f"))
		reasons(t, "dnf remove without binfmt_misc", out, 2, "not mounted")
		checkTable(t, "dnf remove without binfmt_misc", ns.BinfmtDir, merge(others, entF1), out)
		ns.Bind(ns.BinfmtDir, bm)
		out = sync(t, "binfmt_misc mounted again", "pkg-f")
		checkTable(t, "sync", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl")
	})

	t.Run("binfmt_misc refusing writes", func(t *testing.T) {
		// An unprivileged user stands for a container whose root may not
		// write to binfmt_misc: the kernel answers EACCES/EPERM.
		must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", rpmF1))
		o := runIn(t, r, nobody, nil, "/usr/bin/binfmtctl", "hook", "post", "pkg-f-1.0-1", "1")
		if o.code != 1 {
			t.Errorf("hook post as uid 65534: %s; want exit 1 (the scriptlet's \"|| :\" keeps the transaction going)", o)
		}
		oneNotice(t, "hook post as uid 65534", o.out, "permission denied")
		checkTable(t, "hook post as uid 65534", bm, others, o.out)
		checkRecord(t, "hook post as uid 65534", state, "pkg-f", nil)
		o = runIn(t, r, nil, nil, "/usr/bin/binfmtctl", "hook", "post", "pkg-f-1.0-1", "1")
		checkTable(t, "hook post as root", bm, merge(others, entF1), o.out)
		record, _ := os.ReadFile(filepath.Join(state, "pkg-f"))
		o = runIn(t, r, nobody, nil, "/usr/bin/binfmtctl", "hook", "preun", "pkg-f-1.0-1", "0")
		oneNotice(t, "hook preun as uid 65534", o.out, "permission denied")
		checkTable(t, "hook preun as uid 65534", bm, merge(others, entF1), o.out)
		if now, _ := os.ReadFile(filepath.Join(state, "pkg-f")); !bytes.Equal(now, record) {
			t.Errorf("hook preun as uid 65534 changed the record:\n%s\nwas\n%s", now, record)
		}
		out := must(t, "rpm -e")(r.RPM("-e", "pkg-f"))
		checkTable(t, "rpm -e", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl")
	})

	t.Run("F interpreter missing at post", func(t *testing.T) {
		must(t, "rpm -i pkg-f")(r.RPM("-i", rpmF1))
		out := must(t, "dnf install pkg-m")(r.DNF("install", rpmM))
		reasons(t, "dnf install with an F interpreter missing", out, 1, "/usr/libexec/missing-m/interp")
		checkTable(t, "dnf install with an F interpreter missing", bm, merge(others, entF1, entries(t, lineMOK)), out)
		checkRecord(t, "dnf install with an F interpreter missing", state, "pkg-m", entries(t, lineMOK))
		// A later package ships the interpreter.
		copyFile(t, r.Path("/usr/libexec/pkg-m/interp"), r.Path("/usr/libexec/missing-m/interp"), 0o755)
		out = sync(t, "interpreter installed", "pkg-m")
		checkTable(t, "sync", bm, merge(others, entF1, entries(t, lineMF, lineMOK)), out)
		checkRecord(t, "sync", state, "pkg-m", entries(t, lineMF, lineMOK))
		out = must(t, "rpm -e pkg-m")(r.RPM("-e", "pkg-m"))
		checkTable(t, "rpm -e pkg-m", bm, merge(others, entF1), out)
		os.RemoveAll(r.Path("/usr/libexec/missing-m"))
	})

	// pkg-f 1.0 is installed and converged from here on.
	t.Run("record damaged while entries are live", func(t *testing.T) {
		rec := filepath.Join(state, "pkg-f")
		good, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		damage := []struct {
			name   string
			data   []byte // nil removes the record
			notice string // "" when the hook has nothing to say
		}{
			{"garbage", []byte("\x00\xffnot a record\n== \n"), "damaged record"},
			{"truncated", good[:len(good)-9], "damaged record"},
			{"cut after a claim name", good[:bytes.Index(good, []byte("== f-b"))+6], "damaged record"},
			{"older version", bytes.Replace(good, []byte("record 1"), []byte("record 0"), 1), "unknown record version"},
			{"newer version", bytes.Replace(good, []byte("record 1"), []byte("record 2"), 1), "unknown record version"},
			{"empty", []byte{}, "damaged record"},
			{"missing", nil, ""},
		}
		for i, d := range damage {
			spoil := func() {
				os.Remove(rec)
				if d.data != nil {
					if err := os.WriteFile(rec, d.data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The next hook is a reinstall's %post: it rebuilds the record.
			spoil()
			var out string
			if i == 0 {
				out = must(t, "dnf reinstall")(r.DNF("reinstall", rpmF1))
			} else {
				out = must(t, "rpm --reinstall")(r.RPM("--reinstall", rpmF1))
			}
			step := fmt.Sprintf("reinstall with the record %s", d.name)
			if d.notice != "" {
				reasons(t, step, out, 1, d.notice)
			} else if ns := notices(out); len(ns) != 0 {
				t.Errorf("%s: unexpected notices %q", step, ns)
			}
			checkTable(t, step, bm, merge(others, entF1), out)
			checkRecord(t, step, state, "pkg-f", entF1)

			// The next hook is the erase.
			spoil()
			if i == 0 {
				out = must(t, "dnf remove")(r.DNF("remove", "pkg-f"))
			} else {
				out = must(t, "rpm -e")(r.RPM("-e", "pkg-f"))
			}
			step = fmt.Sprintf("erase with the record %s", d.name)
			checkTable(t, step, bm, others, out)
			assertGone(t, r, "/var/lib/binfmtctl")
			must(t, "rpm -i")(r.RPM("-i", rpmF1))
		}
	})

	t.Run("state directory full", func(t *testing.T) {
		must(t, "rpm -e")(r.RPM("-e", "pkg-f"))
		tinyTmpfs(t, state, "size=8k")
		fill := func() { fillUp(t, filepath.Join(state, ".fill")) }
		free := func() { os.Remove(filepath.Join(state, ".fill")) }

		fill()
		out := must(t, "dnf install")(r.DNF("install", rpmF1))
		reasons(t, "dnf install with the state directory full", out, 1, "no space left on device")
		// Nothing may be registered without a record of it.
		checkTable(t, "dnf install with the state directory full", bm, others, out)
		free()
		out = sync(t, "space freed", "pkg-f")
		checkTable(t, "sync", bm, merge(others, entF1), out)
		checkRecord(t, "sync", state, "pkg-f", entF1)

		fill()
		out = must(t, "dnf upgrade")(r.DNF("upgrade", rpmF2))
		reasons(t, "dnf upgrade with the state directory full", out, 1, "no space left on device")
		checkTable(t, "dnf upgrade with the state directory full", bm, merge(others, entF1), out)
		free()
		out = sync(t, "space freed", "pkg-f")
		checkTable(t, "sync", bm, merge(others, entF2), out)
		checkRecord(t, "sync", state, "pkg-f", entF2)

		// Removing a record needs no space.
		fill()
		out = must(t, "dnf remove")(r.DNF("remove", "pkg-f"))
		if ns := notices(out); len(ns) != 0 {
			t.Errorf("dnf remove with the state directory full: unexpected notices %q", ns)
		}
		checkTable(t, "dnf remove with the state directory full", bm, others, out)
		checkRecord(t, "dnf remove with the state directory full", state, "pkg-f", nil)
		free()
		ns.Unmount(state)
		os.Remove(state)
	})

	t.Run("state directory read-only", func(t *testing.T) {
		if err := os.Mkdir(state, 0o755); err != nil {
			t.Fatal(err)
		}
		ns.Bind(state, state)
		ns.RemountReadOnly(state)
		out := must(t, "dnf install")(r.DNF("install", rpmF1))
		reasons(t, "dnf install with the state directory read-only", out, 1, "read-only file system")
		checkTable(t, "dnf install with the state directory read-only", bm, others, out)
		ns.RemountReadWrite(state)
		out = sync(t, "state directory writable again", "pkg-f")
		checkTable(t, "sync", bm, merge(others, entF1), out)
		checkRecord(t, "sync", state, "pkg-f", entF1)

		ns.RemountReadOnly(state)
		out = must(t, "dnf remove")(r.DNF("remove", "pkg-f"))
		reasons(t, "dnf remove with the state directory read-only", out, 2, "read-only file system")
		checkTable(t, "dnf remove with the state directory read-only", bm, others, out)
		ns.RemountReadWrite(state)
		out = sync(t, "state directory writable again", "pkg-f")
		checkTable(t, "sync", bm, others, out)
		checkRecord(t, "sync", state, "pkg-f", nil)
		ns.Unmount(state)
		os.Remove(state)
	})

	t.Run("two hooks at once", func(t *testing.T) {
		must(t, "rpm -i pkg-f")(r.RPM("-i", rpmF1))
		var lines []map[string]string
		pkgs := []string{"pkg-x", "pkg-y"}
		for _, name := range pkgs {
			confs := map[string]string{}
			var ls []string
			for i := 0; i < 8; i++ {
				l := fmt.Sprintf(":%s-%d:M::%s%d::/usr/libexec/%s/interp:F", name[4:], i, strings.ToUpper(name), i, name)
				confs[fmt.Sprintf("%s-%d.conf", name, i)] = l + "\n"
				ls = append(ls, l)
			}
			p := testPkg{name: name, version: "1.0", confs: confs}
			must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", p.build(t, helper)))
			lines = append(lines, entries(t, ls...))
		}
		// Each package's hooks run in a loop, both loops at once, and end
		// with an install hook.
		script := `for i in 1 2 3 4 5 6; do binfmtctl hook post "$1" 1 || exit 1; binfmtctl hook preun "$1" 0 || exit 1; done; binfmtctl hook post "$1" 1`
		done := make(chan outcome, 2)
		for _, name := range pkgs {
			go func() { done <- runIn(t, r, nil, nil, "/bin/sh", "-c", script, "sh", name+"-1.0-1") }()
		}
		for range pkgs {
			if o := <-done; o.code != 0 {
				t.Errorf("concurrent hooks: %s", o)
			}
		}
		checkTable(t, "two hook loops at once", bm, merge(others, entF1, lines[0], lines[1]), "")
		checkRecord(t, "two hook loops at once", state, "pkg-x", lines[0])
		checkRecord(t, "two hook loops at once", state, "pkg-y", lines[1])
		checkRecord(t, "two hook loops at once", state, "pkg-f", entF1)
	})

	t.Run("rpm -e --nopreun", func(t *testing.T) {
		// pkg-x uses the rpm macros: its %postun finds binfmtctl (pkg-f's)
		// and runs the hook.
		out := must(t, "rpm -e --nopreun pkg-x")(r.RPM("-e", "--nopreun", "pkg-x"))
		checkRecord(t, "rpm -e --nopreun pkg-x", state, "pkg-x", nil)
		// pkg-f ships binfmtctl: its %postun works from the record in sh.
		// pkg-y needs pkg-f's binfmtctl; --nodeps, as it is not removed.
		out += must(t, "rpm -e --nopreun pkg-f")(r.RPM("-e", "--nopreun", "--nodeps", "pkg-f"))
		checkRecord(t, "rpm -e --nopreun pkg-f", state, "pkg-f", nil)
		y, _ := os.ReadFile(filepath.Join(state, "pkg-y"))
		checkTable(t, "rpm -e --nopreun", bm, merge(others, entriesOf(t, y)), out)
	})

	t.Run("rpm -e --noscripts, then prune", func(t *testing.T) {
		must(t, "rpm -i pkg-f")(r.RPM("-i", rpmF1))
		y, _ := os.ReadFile(filepath.Join(state, "pkg-y"))
		entY := entriesOf(t, y)
		out := must(t, "rpm -e --noscripts")(r.RPM("-e", "--noscripts", "--nodeps", "pkg-f"))
		// No hook ran: the entries outlive their interpreter.
		checkTable(t, "rpm -e --noscripts", bm, merge(others, entF1, entY), out)
		o := runIn(t, r, nil, nil, ctl, "prune")
		if o.code != 0 || !strings.Contains(o.out, "f-a: would remove (left behind: the record of pkg-f claims it, and pkg-f is not installed)") ||
			!strings.Contains(o.out, "f-b: would remove (left behind: the record of pkg-f claims it, and pkg-f is not installed)") ||
			strings.Count(o.out, "would remove") != 2 {
			t.Fatalf("prune lists the wrong entries: %s", o)
		}
		o = runIn(t, r, nil, nil, ctl, "prune", "--apply")
		if o.code != 0 {
			t.Fatalf("prune --apply: %s", o)
		}
		checkTable(t, "prune --apply", bm, merge(others, entY), o.out)
		checkRecord(t, "prune --apply", state, "pkg-f", nil)
		checkRecord(t, "prune --apply", state, "pkg-y", entY)
		// pkg-y's scriptlets need binfmtctl, which left with pkg-f.
		must(t, "rpm -i pkg-f")(r.RPM("-i", rpmF1))
		out = must(t, "rpm -e pkg-y pkg-f")(r.RPM("-e", "pkg-y", "pkg-f"))
		checkTable(t, "rpm -e pkg-y pkg-f", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl")
	})
}

// entriesOf returns the entry files a record claims.
func entriesOf(t *testing.T, record []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sec := range strings.Split(string(record), "\n== ")[1:] {
		name, body, _ := strings.Cut(sec, "\n")
		out[name] = strings.TrimSuffix(body, "\n") + "\n"
	}
	return out
}

// tinyTmpfs mounts a tmpfs with opts at dir, which it creates, in the
// namespace only.
func tinyTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,"+opts); err != nil {
		t.Fatalf("mounting a tmpfs (%s) at %q: %v", opts, dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// fillUp writes to p until the file system is full.
func fillUp(t *testing.T, p string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", p, err)
			}
			return
		}
	}
}
