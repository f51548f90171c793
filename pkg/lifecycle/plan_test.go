package lifecycle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Definitions the plan tests use. X1 and X2 are two definitions of one
// entry name.
const (
	x1   = ":x:M::XONE::/usr/bin/interp:F"
	x2   = ":x:M::XTWO::/usr/bin/interp:F"
	x3   = ":x:M::XHIJACK::/bin/true:"
	y1   = ":y:E::yy::/usr/bin/interp:"
	ordA = ":ord:M::AAA::/usr/bin/interp:"
	ordZ = ":ord:M::ZZZ::/usr/bin/interp:"
)

// conf is a binfmt.d file for a Snapshot: path and lines.
func conf(t *testing.T, path string, lines ...string) ConfFile {
	t.Helper()
	f := ConfFile{Path: path, Masked: len(lines) == 0}
	for i, l := range lines {
		f.Lines = append(f.Lines, binfmt.Line{Entry: mustEntry(t, l), File: path, Num: i + 1, Raw: l})
	}
	return f
}

// files builds Snapshot.Files: candidates of one base name keep the
// order given, which must be binfmt.ConfigDirs order.
func files(fs ...ConfFile) map[string][]ConfFile {
	out := map[string][]ConfFile{}
	for _, f := range fs {
		b := f.Path[strings.LastIndexByte(f.Path, '/')+1:]
		out[b] = append(out[b], f)
	}
	return out
}

func live(t *testing.T, lines ...string) map[string]binfmt.Live {
	t.Helper()
	out := map[string]binfmt.Live{}
	for _, l := range lines {
		e := mustEntry(t, l)
		out[e.Name] = binfmt.Live{Entry: e, Enabled: true}
	}
	return out
}

func claims(t *testing.T, lines ...string) Claims {
	t.Helper()
	c := Claims{}
	for _, l := range lines {
		c.Add(mustEntry(t, l))
	}
	return c
}

// step is what a test expects of one entry: "register x1", "leave",
// "unregister", with a notice containing notice when it is not "".
type wantStep struct {
	action Action
	def    string // the register line of the definition, "" for none
	notice string
}

func TestPlan(t *testing.T) {
	const (
		usrX  = "/usr/lib/binfmt.d/x.conf"
		usrB  = "/usr/lib/binfmt.d/b.conf"
		etcX  = "/etc/binfmt.d/x.conf"
		etcZZ = "/etc/binfmt.d/zz.conf"
	)
	unsafe := errors.New("unsafe interpreter")
	cases := []struct {
		name    string
		snap    func(t *testing.T) Snapshot
		change  Change
		steps   map[string]wantStep
		records map[string][]string // package -> claims; nil slice: record removed
		order   []string            // names of the writes, in order
		errs    int
	}{
		{
			name: "install registers what the package defines",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1, y1))}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Register, x1, ""}, "y": {Register, y1, ""}},
			records: map[string][]string{"a": {x1, y1}},
			order:   []string{"x", "y"},
		},
		{
			name: "reinstall without repin leaves what is live as defined",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change: Change{Package: "a", Files: []string{usrX}, Adopt: true},
			steps:  map[string]wantStep{"x": {Leave, x1, ""}},
		},
		{
			name: "reinstall with repin registers again",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change: Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:  map[string]wantStep{"x": {Replace, x1, ""}},
			order:  []string{"x"},
		},
		{
			name: "someone else's entry under the name is left alone",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x3)}
			},
			change: Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:  map[string]wantStep{"x": {Leave, x1, "registered by someone else"}},
		},
		{
			name: "an exact match nobody claims is adopted",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1)}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x1, ""}},
			records: map[string][]string{"a": {x1}},
			order:   []string{"x"},
		},
		{
			name: "the host's table seen from an installroot: an exact match is the host's",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1, y1)), Live: live(t, x1)}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: false},
			steps:   map[string]wantStep{"x": {Leave, x1, "registered by someone else"}, "y": {Register, y1, ""}},
			records: map[string][]string{"a": {y1}},
			order:   []string{"y"},
		},
		{
			name: "the host's table, erase: the host's entry stays",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1, y1)), Live: live(t, x1, y1),
					Claims: map[string]Claims{"a": claims(t, y1)}, Owners: map[string][]string{usrX: {"a"}}}
			},
			change:  Change{Package: "a", Adopt: false},
			steps:   map[string]wantStep{"x": {Leave, "", ""}, "y": {Unregister, "", ""}},
			records: map[string][]string{"a": nil},
			order:   []string{"y"},
		},
		{
			name: "erase unregisters what no remaining file defines",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)},
					Owners: map[string][]string{usrX: {"a"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Unregister, "", ""}},
			records: map[string][]string{"a": nil},
			order:   []string{"x"},
		},
		{
			name: "erase with owners unknown keeps what a file on disk defines",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, x1, "still defines it"}},
			records: map[string][]string{"a": nil},
		},
		{
			name: "erase when rpm could not answer: the record decides",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}, OwnersFailed: true}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Unregister, "", ""}},
			records: map[string][]string{"a": nil},
			order:   []string{"x"},
		},
		{
			name: "two packages define one entry in different files: erasing one keeps it",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1), conf(t, usrB, x1)), Live: live(t, x1),
					Claims: map[string]Claims{"a": claims(t, x1), "b": claims(t, x1)},
					Owners: map[string][]string{usrX: {"a"}, usrB: {"b"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, x1, "/usr/lib/binfmt.d/b.conf:1 still defines it"}},
			records: map[string][]string{"a": nil},
		},
		{
			name: "two packages, two definitions: erasing the winner's registers the other's, and its claim follows",
			snap: func(t *testing.T) Snapshot {
				// b.conf sorts before x.conf, so x.conf's X2 won.
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)), Live: live(t, x2),
					Claims: map[string]Claims{"b": claims(t, x2), "a": claims(t, x2)},
					Owners: map[string][]string{usrX: {"a"}, usrB: {"b"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x1, "registered again as /usr/lib/binfmt.d/b.conf:1 defines it"}},
			records: map[string][]string{"a": nil, "b": {x1}},
			order:   []string{"x"},
		},
		{
			name: "second package's install: the later file wins, the first package's claim follows",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)), Live: live(t, x1),
					Claims: map[string]Claims{"b": claims(t, x1)}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x2, ""}},
			records: map[string][]string{"a": {x2}, "b": {x2}},
			order:   []string{"x"},
		},
		{
			// The second package's %post killed after it unregistered
			// X1: b's record holds X1 and X2 (its intent), nothing is
			// live. The rerun registers X2 and replaces nothing, so no
			// follow moves b's claim; X1 is provably not live after it.
			name: "a killed replace left both claims: the rerun's register keeps the other package's live one",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)),
					Claims: map[string]Claims{"b": claims(t, x1, x2), "a": claims(t, x2)}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Register, x2, ""}},
			records: map[string][]string{"b": {x2}},
			order:   []string{"x"},
		},
		{
			// Killed after registering X2 (or before the result): X2 is
			// live and left as it is.
			name: "a killed replace left both claims: the rerun leaves the entry and drops the claim that is not live",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)), Live: live(t, x2),
					Claims: map[string]Claims{"b": claims(t, x1, x2), "a": claims(t, x2)}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, x2, ""}},
			records: map[string][]string{"b": {x2}},
		},
		{
			// Neither of b's claims is what is live: both are kept, as
			// nothing proves which one b's own hooks will meet.
			name: "several claims, none live: the other package's record is kept whole",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)), Live: live(t, x3),
					Claims: map[string]Claims{"b": claims(t, x1, x2)}}
			},
			change: Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:  map[string]wantStep{"x": {Leave, x2, "registered by someone else"}},
		},
		{
			name: "erase with its claim lost: the entry live as the removed file defined it gives way to the other package's",
			snap: func(t *testing.T) Snapshot {
				// a's record is gone; b's claim had followed a's X2.
				return Snapshot{Files: files(conf(t, usrB, x1), conf(t, usrX, x2)), Live: live(t, x2),
					Claims: map[string]Claims{"b": claims(t, x2)},
					Owners: map[string][]string{usrX: {"a"}, usrB: {"b"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x1, "registered again as /usr/lib/binfmt.d/b.conf:1 defines it"}},
			records: map[string][]string{"b": {x1}},
			order:   []string{"x"},
		},
		{
			name: "the host's table: a host entry as the root's removed file defined it stays",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Owners: map[string][]string{usrX: {"a"}}}
			},
			change: Change{Package: "a", Adopt: false},
			steps:  map[string]wantStep{"x": {Leave, "", ""}},
		},
		{
			name: "renamed package, %post of the new name: the old one's entry is taken over",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"old": claims(t, x1)}}
			},
			change:  Change{Package: "new", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x1, ""}},
			records: map[string][]string{"new": {x1}},
			order:   []string{"x"},
		},
		{
			name: "renamed package, %preun of the old name: the shared file stays, so does the entry",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1),
					Claims: map[string]Claims{"old": claims(t, x1), "new": claims(t, x1)},
					Owners: map[string][]string{usrX: {"old", "new"}}}
			},
			change:  Change{Package: "old", Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, x1, "still defines it"}},
			records: map[string][]string{"old": nil},
		},
		{
			name: "the administrator's /etc file of the same name stays after the erase",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, etcX, x1), conf(t, usrX, x1)), Live: live(t, x1),
					Claims: map[string]Claims{"a": claims(t, x1)}, Owners: map[string][]string{etcX: {}, usrX: {"a"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, x1, "/etc/binfmt.d/x.conf:1 still defines it"}},
			records: map[string][]string{"a": nil},
		},
		{
			name: "the administrator's file overriding the entry: erase registers the administrator's",
			snap: func(t *testing.T) Snapshot {
				// zz.conf came after the install: boot would register X2.
				return Snapshot{Files: files(conf(t, usrX, x1), conf(t, etcZZ, x2)), Live: live(t, x1),
					Claims: map[string]Claims{"a": claims(t, x1)}, Owners: map[string][]string{etcZZ: {}, usrX: {"a"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x2, "zz.conf:1 defines it"}},
			records: map[string][]string{"a": nil},
			order:   []string{"x"},
		},
		{
			name: "an /etc override of the package's file is what the package registers",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, etcX, x2), conf(t, usrX, x1))}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Register, x2, ""}},
			records: map[string][]string{"a": {x2}},
			order:   []string{"x"},
		},
		{
			name: "files apply in systemd's order: sorted by name across directories",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, "/etc/binfmt.d/z.conf", ordZ), conf(t, "/usr/lib/binfmt.d/a.conf", ordA))}
			},
			change:  Change{Package: "a", Files: []string{"/etc/binfmt.d/z.conf", "/usr/lib/binfmt.d/a.conf"}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"ord": {Register, ordZ, ""}},
			records: map[string][]string{"a": {ordZ}},
			order:   []string{"ord"},
		},
		{
			name: "upgrade: what only the old version's file defined goes",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1), conf(t, usrB, y1)), Live: live(t, x1, y1),
					Claims: map[string]Claims{"a": claims(t, x1, y1)}, Owners: map[string][]string{usrB: {"a"}}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x1, ""}, "y": {Unregister, "", ""}},
			records: map[string][]string{"a": {x1}},
			order:   []string{"x", "y"},
		},
		{
			name: "upgrade: a changed definition replaces the old one",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x2)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Replace, x2, ""}},
			records: map[string][]string{"a": {x2}},
			order:   []string{"x"},
		},
		{
			name: "hijacked since registered: post leaves it and keeps the claim",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x3), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change: Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:  map[string]wantStep{"x": {Leave, x1, "replaced by someone else"}},
		},
		{
			name: "hijacked since registered: erase leaves it and drops the claim",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x3), Claims: map[string]Claims{"a": claims(t, x1)},
					Owners: map[string][]string{usrX: {"a"}}}
			},
			change:  Change{Package: "a", Adopt: true},
			steps:   map[string]wantStep{"x": {Leave, "", "replaced by someone else"}},
			records: map[string][]string{"a": nil},
		},
		{
			name: "erase without a record adopts the exact matches of its own files",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1, y1)), Live: live(t, x1, ":y:E::other::/bin/true:"),
					Owners: map[string][]string{usrX: {"a"}}}
			},
			change: Change{Package: "a", Adopt: true},
			steps:  map[string]wantStep{"x": {Unregister, "", ""}, "y": {Leave, "", ""}},
			order:  []string{"x"},
		},
		{
			name: "a masked file defines nothing; its claimed entry goes",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, etcX), conf(t, usrX, x1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Unregister, "", ""}},
			records: map[string][]string{"a": nil},
			order:   []string{"x"},
		},
		{
			name: "an unsafe definition is refused, and what was the package's goes",
			snap: func(t *testing.T) Snapshot {
				s := Snapshot{Files: files(conf(t, usrX, x2, y1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
				s.Check = func(l binfmt.Line) ([]string, error) {
					if l.Name == "x" || l.Name == "y" {
						return nil, unsafe
					}
					return nil, nil
				}
				return s
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Unregister, x2, ""}, "y": {Leave, y1, ""}},
			records: map[string][]string{"a": nil},
			order:   []string{"x"},
			errs:    2,
		},
		{
			name: "a definition matching native programs is refused with a notice, not an error",
			snap: func(t *testing.T) Snapshot {
				s := Snapshot{Files: files(conf(t, usrX, x2, y1)), Live: live(t, x1), Claims: map[string]Claims{"a": claims(t, x1)}}
				s.Refuse = func(l binfmt.Line) error {
					if l.Name == "x" {
						return errors.New("matches /bin/sh")
					}
					return nil
				}
				return s
			},
			change:  Change{Package: "a", Files: []string{usrX}, Repin: true, Adopt: true},
			steps:   map[string]wantStep{"x": {Unregister, x2, ""}, "y": {Register, y1, ""}},
			records: map[string][]string{"a": {y1}},
			order:   []string{"y", "x"},
		},
		{
			name: "a file trigger for files no package with hooks owns",
			snap: func(t *testing.T) Snapshot {
				return Snapshot{Files: files(conf(t, usrX, x1)), Live: live(t, x1, y1)}
			},
			change: Change{Gone: []string{usrX}, Adopt: true},
			steps:  map[string]wantStep{"x": {Unregister, "", ""}},
			order:  []string{"x"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap(t)
			before := fmt.Sprint(s.Claims)
			r := Plan(s, tc.change)
			if fmt.Sprint(s.Claims) != before {
				t.Errorf("Plan changed its input claims")
			}
			got := map[string]Step{}
			var order []string
			for _, st := range r.Steps {
				got[st.Name] = st
				if st.Action != Leave {
					order = append(order, st.Name)
				}
			}
			for name, w := range tc.steps {
				st, ok := got[name]
				if !ok {
					t.Errorf("no step for %s; steps: %+v", name, r.Steps)
					continue
				}
				if st.Action != w.action {
					t.Errorf("%s: %s (%s), want %s", name, st.Action, st.Reason, w.action)
				}
				if w.def != "" && st.Def.Raw != w.def {
					t.Errorf("%s: definition %q, want %q", name, st.Def.Raw, w.def)
				}
				if w.notice != "" && (!st.Notice || !strings.Contains(st.Reason, w.notice)) {
					t.Errorf("%s: reason %q (notice %v), want a notice saying %q", name, st.Reason, st.Notice, w.notice)
				}
				if w.notice == "" && st.Notice {
					t.Errorf("%s: unexpected notice %q", name, st.Reason)
				}
			}
			for name := range got {
				if _, ok := tc.steps[name]; !ok {
					t.Errorf("unexpected step %+v", got[name])
				}
			}
			if strings.Join(order, " ") != strings.Join(tc.order, " ") {
				t.Errorf("writes in order %q, want %q", order, tc.order)
			}
			var gotRec []string
			for p, c := range r.Records {
				var ls []string
				for _, n := range c.Names() {
					for _, e := range c[n] {
						ls = append(ls, e.Status())
					}
				}
				sort.Strings(ls)
				gotRec = append(gotRec, p+": "+strings.Join(ls, "|"))
			}
			var wantRec []string
			for p, ls := range tc.records {
				var st []string
				for _, l := range ls {
					st = append(st, mustEntry(t, l).Status())
				}
				sort.Strings(st)
				wantRec = append(wantRec, p+": "+strings.Join(st, "|"))
			}
			sort.Strings(gotRec)
			sort.Strings(wantRec)
			if strings.Join(gotRec, "\n") != strings.Join(wantRec, "\n") {
				t.Errorf("records\n%s\nwant\n%s", strings.Join(gotRec, "\n"), strings.Join(wantRec, "\n"))
			}
			if tc.name == "a definition matching native programs is refused with a notice, not an error" &&
				(len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "matches /bin/sh; not registering it")) {
				t.Errorf("notices %q, want one naming the refusal", r.Notices)
			}
			if len(r.Errors) != tc.errs {
				t.Errorf("errors %v, want %d", r.Errors, tc.errs)
			}
			for _, err := range r.Errors {
				if !errors.Is(err, unsafe) {
					t.Errorf("error %v does not wrap the check's", err)
				}
			}
		})
	}
}

func TestNeedOwners(t *testing.T) {
	s := Snapshot{
		Files: files(conf(t, "/etc/binfmt.d/x.conf", x2), conf(t, "/usr/lib/binfmt.d/x.conf", x1),
			conf(t, "/usr/lib/binfmt.d/b.conf", y1), conf(t, "/usr/lib/binfmt.d/c.conf", ":z:E::zz::/bin/true:")),
		Claims: map[string]Claims{"a": claims(t, y1)},
	}
	got := NeedOwners(s, Change{Package: "a", Files: []string{"/usr/lib/binfmt.d/x.conf"}})
	want := []string{"/etc/binfmt.d/x.conf", "/usr/lib/binfmt.d/b.conf"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("NeedOwners = %q, want %q", got, want)
	}
}
