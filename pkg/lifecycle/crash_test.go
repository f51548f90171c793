package lifecycle_test

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// crashPoints are the places in a hook where a binfmtctl built with
// -tags crashpoint kills itself (see crashpoint_inject.go), in the order a
// run passes them.
var crashPoints = []string{"before-intent", "after-intent", "after-unregister", "after-register", "before-final", "after-final"}

// TestCrashPoints kills the hook with SIGKILL at every crash point of an
// install, an upgrade and an erase, once for every time the run passes
// that point, and checks that the record still claims every live entry of
// the package and that running the same hook again converges exactly.
//
// It runs on each stack (subtests host and sid): rpm 4.18 and dnf 4, and
// Debian sid's rpm 6.1 and dnf5.
func TestCrashPoints(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { crashPointsOn(t, st) })
	}
}

func crashPointsOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelperTags(t, "crashpoint")
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	const (
		lineA  = ":k-a:M::KCA::/usr/libexec/pkg-k/interp:F"
		lineB1 = ":k-b:M::KCB::/usr/libexec/pkg-k/interp:F"
		lineB2 = ":k-b:M:1:KB2::/usr/libexec/pkg-k/interp:F"
		lineC  = ":k-c:M::KCC::/usr/libexec/pkg-k/interp:F"
		lineD  = "|k-d|E||kcd||/usr/libexec/pkg-k/interp|"
	)
	names := []string{"k-a", "k-b", "k-c", "k-d"}
	v1 := testPkg{name: "pkg-k", version: "1.0", self: true, confs: map[string]string{
		"k-a.conf": lineA + "\n", "k-b.conf": lineB1 + "\n", "k-c.conf": lineC + "\n"}}
	v2 := testPkg{name: "pkg-k", version: "2.0", self: true, confs: map[string]string{
		"k-b.conf": lineB2 + "\n", "k-c.conf": lineC + "\n", "k-d.conf": lineD + "\n"}}
	rpm1, rpm2 := v1.build(t, helper), v2.build(t, helper)

	fs := &binfmt.FS{Dir: bm}
	for _, s := range []string{":other-k:M::KCA::/bin/true:", ":other-off:E::koff::/bin/true:"} {
		if err := fs.RegisterString(s[1:strings.Index(s[1:], ":")+1], s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Disable("other-off"); err != nil {
		t.Fatal(err)
	}
	others := table(t, bm)
	ctl := "/usr/bin/binfmtctl"
	hook := func(t *testing.T, env []string, args ...string) outcome {
		t.Helper()
		return runIn(t, r, nil, env, ctl, args...)
	}
	must(t, "rpm -i --noscripts v1")(r.RPM("-i", "--noscripts", rpm1))

	scenarios := []struct {
		name  string
		setup func(t *testing.T)
		args  []string
		want  map[string]string // the package's entries once converged
		hits  map[string]int    // how often a run passes each point
	}{
		{
			name: "install",
			setup: func(t *testing.T) {
				clearEntries(t, bm, names...)
				os.RemoveAll(state)
			},
			args: []string{"hook", "post", "pkg-k-1.0-1", "1"},
			want: entries(t, lineA, lineB1, lineC),
			hits: map[string]int{"before-intent": 1, "after-intent": 1, "after-register": 3, "before-final": 1, "after-final": 1},
		},
		{
			// %post of v2 while v1's entries are live: k-b changes, k-c
			// is registered again to pin the new interpreter, k-d is new
			// and k-a goes.
			name: "upgrade",
			// v2 is installed; the kernel and the record are put back to
			// what v1's %post left, without two rpm runs per crash.
			setup: func(t *testing.T) {
				clearEntries(t, bm, names...)
				if o := hook(t, nil, "register", "/tmp/k-v1.conf"); o.code != 0 {
					t.Fatalf("registering v1's entries: %s", o)
				}
				c := lifecycle.Claims{}
				for _, l := range []string{lineA, lineB1, lineC} {
					e, _ := binfmt.ParseLine(l)
					c.Add(e)
				}
				if err := (lifecycle.Store{Dir: state}).Save("pkg-k", c); err != nil {
					t.Fatal(err)
				}
			},
			args: []string{"hook", "post", "pkg-k-2.0-1", "1"},
			want: entries(t, lineB2, lineC, lineD),
			hits: map[string]int{"before-intent": 1, "after-intent": 1, "after-unregister": 3, "after-register": 3, "before-final": 1, "after-final": 1},
		},
		{
			name: "erase",
			setup: func(t *testing.T) {
				if o := hook(t, nil, "hook", "post", "pkg-k-2.0-1", "1"); o.code != 0 {
					t.Fatalf("hook post v2: %s", o)
				}
			},
			args: []string{"hook", "preun", "pkg-k-2.0-1", "0"},
			want: map[string]string{},
			hits: map[string]int{"before-intent": 1, "after-intent": 1, "after-unregister": 3, "before-final": 1, "after-final": 1},
		},
	}
	if err := os.WriteFile(r.Path("/tmp/k-v1.conf"), []byte(lineA+"\n"+lineB1+"\n"+lineC+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kills := 0
	for _, sc := range scenarios {
		if sc.name == "upgrade" {
			must(t, "rpm -U --noscripts v2")(r.RPM("-U", "--noscripts", rpm2))
		}
		t.Run(sc.name, func(t *testing.T) {
			for _, point := range crashPoints {
				n := 1
				for ; ; n++ {
					step := fmt.Sprintf("%s killed at %s:%d", sc.name, point, n)
					sc.setup(t)
					o := hook(t, []string{"BINFMTCTL_CRASH_AT=" + fmt.Sprintf("%s:%d", point, n)}, sc.args...)
					if o.signal == 0 {
						// The run passed the point fewer than n times and
						// finished: it must have converged on its own.
						if o.code != 0 {
							t.Fatalf("%s: the run did not crash and failed: %s", step, o)
						}
						checkTable(t, step, bm, merge(others, sc.want), o.out)
						checkRecord(t, step, state, "pkg-k", sc.want)
						break
					}
					if o.signal != syscall.SIGKILL || !strings.Contains(o.out, "killed at crash point "+point) {
						t.Fatalf("%s: %s", step, o)
					}
					kills++
					checkClaimed(t, step, bm, state, "pkg-k", names)
					got := table(t, bm)
					for name, e := range others {
						if got[name] != e {
							t.Fatalf("%s: someone else's entry %s changed:\n%s", step, name, got[name])
						}
					}
					again := hook(t, nil, sc.args...)
					if again.code != 0 || again.signal != 0 {
						t.Fatalf("%s, then run again: %s", step, again)
					}
					checkTable(t, step+", then run again", bm, merge(others, sc.want), again.out)
					checkRecord(t, step+", then run again", state, "pkg-k", sc.want)
				}
				if n-1 != sc.hits[point] {
					t.Errorf("%s passes crash point %s %d times, want %d", sc.name, point, n-1, sc.hits[point])
				}
			}
		})
	}
	t.Logf("%d runs killed, each converged when run again", kills)

	// The same in real transactions: a killed scriptlet does not fail the
	// transaction (the scriptlets end in "|| :"), and what it left is
	// finished by the next hook, here the %postun of the erase, which
	// runs from the record in plain sh because binfmtctl is gone by then.
	t.Run("dnf", func(t *testing.T) {
		must(t, "rpm -e --noscripts")(r.RPM("-e", "--noscripts", "pkg-k"))
		clearEntries(t, bm, names...)
		os.RemoveAll(state)
		out := must(t, "dnf install, killed")(dnfEnv(t, r, []string{"BINFMTCTL_CRASH_AT=after-register:2"}, "install", rpm1))
		if !strings.Contains(out, "killed at crash point after-register:2") {
			t.Fatalf("the %%post was not killed:\n%s", out)
		}
		checkClaimed(t, "dnf install, killed", bm, state, "pkg-k", names)
		o := hook(t, nil, "hook", "post", "pkg-k-1.0-1", "1")
		checkTable(t, "dnf install killed, hook run again", bm, merge(others, entries(t, lineA, lineB1, lineC)), o.out)

		out = must(t, "dnf upgrade, killed")(dnfEnv(t, r, []string{"BINFMTCTL_CRASH_AT=after-unregister:1"}, "upgrade", rpm2))
		if !strings.Contains(out, "killed at crash point after-unregister:1") {
			t.Fatalf("the %%post was not killed:\n%s", out)
		}
		checkClaimed(t, "dnf upgrade, killed", bm, state, "pkg-k", names)
		o = hook(t, nil, "sync", "pkg-k")
		checkTable(t, "dnf upgrade killed, then sync", bm, merge(others, entries(t, lineB2, lineC, lineD)), o.out)
		checkRecord(t, "dnf upgrade killed, then sync", state, "pkg-k", entries(t, lineB2, lineC, lineD))

		out = must(t, "dnf remove, killed")(dnfEnv(t, r, []string{"BINFMTCTL_CRASH_AT=after-unregister:2"}, "remove", "pkg-k"))
		if !strings.Contains(out, "killed at crash point after-unregister:2") {
			t.Fatalf("the %%preun was not killed:\n%s", out)
		}
		checkTable(t, "dnf remove, %preun killed", bm, others, out)
		assertGone(t, r, "/var/lib/binfmtctl", "/usr/bin/binfmtctl")
	})
}

// TestCrashPointsSharedEntry kills, at every crash point, a %post whose
// definition wins over another package's for one entry: the run replaces
// the entry and moves the other package's claim, so two records change.
// After each kill both records still claim whatever is live, and the
// hook run again converges.
func TestCrashPointsSharedEntry(t *testing.T) {
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) { crashPointsSharedEntryOn(t, st) })
	}
}

func crashPointsSharedEntryOn(t *testing.T, st sandbox.Stack) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	helper := buildHelperTags(t, "crashpoint")
	r := ns.DNFRootOn(st)
	bm := r.BinfmtDir
	state := r.Path("/var/lib/binfmtctl")
	const (
		// s2.conf sorts after s1.conf, so pkg-s2's definition wins.
		line1 = ":shared:M::SHONE::/usr/libexec/pkg-s1/interp:"
		line2 = ":shared:M::SHTWO::/usr/libexec/pkg-s1/interp:"
	)
	s1 := testPkg{name: "pkg-s1", version: "1.0", self: true, confs: map[string]string{"s1.conf": line1 + "\n"}}
	s2 := testPkg{name: "pkg-s2", version: "1.0", confs: map[string]string{"s2.conf": line2 + "\n"}}
	must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", s1.build(t, helper)))
	must(t, "rpm -i --noscripts")(r.RPM("-i", "--noscripts", s2.build(t, helper)))
	others := table(t, bm)
	ctl := "/usr/bin/binfmtctl"
	setup := func(t *testing.T) {
		clearEntries(t, bm, "shared")
		os.RemoveAll(state)
		// pkg-s1 alone: what its %post did before pkg-s2 came. s2.conf
		// is parked in /usr/lib, on the same mount: in a host-stack
		// root /usr is an overlay and /tmp is not, so a move to /tmp
		// failed with EXDEV (unchecked) and pkg-s1's %post saw both
		// files; only the sid root, one overlay, moved it.
		conf, parked := r.Path("/usr/lib/binfmt.d/s2.conf"), r.Path("/usr/lib/s2.conf.parked")
		if err := os.Rename(conf, parked); err != nil {
			t.Fatal(err)
		}
		if o := runIn(t, r, nil, nil, ctl, "hook", "post", "pkg-s1-1.0-1", "1"); o.code != 0 {
			t.Fatalf("hook post pkg-s1: %s", o)
		}
		if err := os.Rename(parked, conf); err != nil {
			t.Fatal(err)
		}
	}
	want := entries(t, line2)
	kills := 0
	for _, point := range crashPoints {
		for n := 1; ; n++ {
			step := fmt.Sprintf("killed at %s:%d", point, n)
			setup(t)
			o := runIn(t, r, nil, []string{fmt.Sprintf("BINFMTCTL_CRASH_AT=%s:%d", point, n)}, ctl, "hook", "post", "pkg-s2-1.0-1", "1")
			if o.signal == 0 {
				if o.code != 0 {
					t.Fatalf("%s: the run did not crash and failed: %s", step, o)
				}
				break
			}
			kills++
			// pkg-s1's claim moves with the entry, so it claims whatever
			// is live at every point (pkg-s2 claims nothing until its
			// intent is written; its rerun converges either way).
			checkClaimed(t, step, bm, state, "pkg-s1", []string{"shared"})
			again := runIn(t, r, nil, nil, ctl, "hook", "post", "pkg-s2-1.0-1", "1")
			if again.code != 0 {
				t.Fatalf("%s, then run again: %s", step, again)
			}
			checkTable(t, step+", then run again", bm, merge(others, want), again.out)
			checkRecord(t, step+", then run again", state, "pkg-s1", want)
			checkRecord(t, step+", then run again", state, "pkg-s2", want)
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed")
	}
	t.Logf("%d runs killed, each converged when run again", kills)
}
