package lifecycle

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

func mustLine(t testing.TB, file, raw string) binfmt.Line {
	e, err := binfmt.ParseLine(raw)
	if err != nil {
		panic(fmt.Sprintf("ParseLine(%q): %v", raw, err))
	}
	return binfmt.Line{Entry: e, File: file, Num: 1, Raw: raw}
}

func rawOf(l binfmt.Line, enabled bool) RawEntry {
	s := l.Status()
	if !enabled {
		s = "disabled" + strings.TrimPrefix(s, "enabled")
	}
	return RawEntry{Name: l.Name, Raw: []byte(s)}
}

func liveOf(l binfmt.Line) binfmt.Live { return binfmt.Live{Entry: l.Entry, Enabled: true} }

var (
	admin   = mustLine(nil, "", ":admin:M::ADMIN::/bin/true:")
	docker  = mustLine(nil, "", ":qemu-riscv64:M::\\x7fELF\\x02\\x01\\x01::/usr/bin/qemu-riscv64:OCF")
	fedora  = mustLine(nil, "/usr/lib/binfmt.d/qemu-aarch64-static.conf", ":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/bin/qemu-aarch64-static:F")
	ours    = mustLine(nil, "/usr/lib/binfmt.d/qemu-aarch64-static.conf", ":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xfe\\xff:/usr/bin/qemu-aarch64-static:F")
	oldway  = mustLine(nil, "/usr/lib/binfmt.d/oldway.conf", ":oldway:M::OLDWAY::/usr/libexec/oldway/run:")
	oldway2 = mustLine(nil, "/usr/lib/binfmt.d/oldway.conf", ":oldway:M::OLDWAY2::/usr/libexec/oldway/run:")
	extra   = mustLine(nil, "/usr/lib/binfmt.d/oldway.conf", ":oldway-extra:M::EXTRA::/usr/libexec/oldway/run:")
)

func TestPlanRestore(t *testing.T) {
	cases := []struct {
		name     string
		snapshot []RawEntry
		live     []binfmt.Line
		onDisk   []binfmt.Line
		leaving  []binfmt.Line
		want     []string
	}{
		{"nothing flushed", []RawEntry{rawOf(admin, true)}, []binfmt.Line{admin}, nil, nil, nil},
		{"flushed admin entry comes back", []RawEntry{rawOf(admin, true)}, nil, nil, nil, []string{"admin"}},
		{"disabled entry comes back", []RawEntry{rawOf(admin, false)}, nil, nil, nil, []string{"admin"}},
		{"re-registered by a file: the file wins", []RawEntry{rawOf(fedora, true)}, []binfmt.Line{ours}, []binfmt.Line{ours}, nil, nil},
		{"its file was removed in the transaction", []RawEntry{rawOf(oldway, true)}, nil, nil, []binfmt.Line{oldway}, nil},
		{"its file was replaced by one defining it the same", []RawEntry{rawOf(oldway, true)}, nil, []binfmt.Line{oldway}, []binfmt.Line{oldway}, []string{"oldway"}},
		{"a leaving file defined the name otherwise", []RawEntry{rawOf(admin, true)}, nil, nil, []binfmt.Line{mustLine(t, "/x.conf", ":admin:M::OTHER::/bin/true:")}, []string{"admin"}},
		{"several, in snapshot order", []RawEntry{rawOf(admin, true), rawOf(docker, true), rawOf(oldway, true)}, nil, nil, []binfmt.Line{oldway}, []string{"admin", "qemu-riscv64"}},
		{"damaged snapshot entry", []RawEntry{{Name: "bad", Raw: []byte("what\n")}}, nil, nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live := map[string][]byte{}
			for _, l := range c.live {
				live[l.Name] = []byte(l.Status())
			}
			disk := map[string]binfmt.Line{}
			for _, l := range c.onDisk {
				disk[l.Name] = l
			}
			var leaving []binfmt.Entry
			for _, l := range c.leaving {
				leaving = append(leaving, l.Entry)
			}
			p := PlanRestore(c.snapshot, live, disk, leaving)
			var got []string
			for _, r := range p.Restore {
				got = append(got, r.Name)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("restore %v, want %v (skipped %q)", got, c.want, p.Skipped)
			}
			if c.name == "damaged snapshot entry" && len(p.Skipped) != 1 {
				t.Errorf("a damaged entry is not named: %q", p.Skipped)
			}
		})
	}
}

// TestPlanTriggerChanges: the Changes the cleanup of packages that never
// call the hooks gives Plan, and what Plan decides for them.
func TestPlanTriggerChanges(t *testing.T) {
	const path = "/usr/lib/binfmt.d/oldway.conf"
	const o1 = ":oldway:M::OLDWAY::/usr/libexec/oldway/run:F"
	const o2 = ":oldway:M::OLDWAY2::/usr/libexec/oldway/run:F"
	const ex = ":oldway-extra:M::EXTRA::/usr/libexec/oldway/run:"
	const other = "/etc/binfmt.d/oldway.conf"
	cases := []struct {
		name string
		snap Snapshot
		ch   Change
		want []string // "action name", writes only
	}{
		{"removing unregisters what the file defines",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1))},
			Change{Gone: []string{path}, Adopt: true}, []string{"unregister oldway"}},
		{"removing leaves a changed entry",
			Snapshot{Live: live(t, o2), Files: files(conf(t, path, o1))},
			Change{Gone: []string{path}, Adopt: true}, nil},
		{"removing leaves what the administrator's file defines the same",
			Snapshot{Live: live(t, o1), Files: files(conf(t, other, o1), conf(t, path, o1))},
			Change{Gone: []string{path}, Adopt: true}, nil},
		{"removing puts in what another file defines otherwise",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1), conf(t, "/usr/lib/binfmt.d/zz.conf", o2))},
			Change{Gone: []string{path}, Adopt: true}, []string{"replace oldway"}},
		// The invariant: where no file defines an entry any more, it is
		// absent, whoever's record claims it. (A hook package's own
		// files never reach the removing trigger: cleanupRemoving leaves
		// them to its hooks.)
		{"removing takes away what no remaining file defines, even under a hook package's claim",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1)), Claims: map[string]Claims{"hooked": claims(t, o1)}},
			Change{Gone: []string{path}, Adopt: true}, []string{"unregister oldway"}},
		{"removing leaves an entry a hook package's file still defines",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1), conf(t, "/usr/lib/binfmt.d/zz-hooked.conf", o1)), Claims: map[string]Claims{"hooked": claims(t, o1)}},
			Change{Gone: []string{path}, Adopt: true}, nil},
		{"removing with the package's own record (made by a sync) unregisters and drops it",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1)), Claims: map[string]Claims{"oldway-binfmt": claims(t, o1)}},
			Change{Package: "oldway-binfmt", Gone: []string{path}, Adopt: true}, []string{"unregister oldway"}},
		{"install registers",
			Snapshot{Files: files(conf(t, path, o1))},
			Change{Files: []string{path}, Adopt: true}, []string{"register oldway"}},
		{"install finds it live as defined: once is enough",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1))},
			Change{Files: []string{path}, Adopt: true}, nil},
		{"install finds someone else's",
			Snapshot{Live: live(t, o2), Files: files(conf(t, path, o1))},
			Change{Files: []string{path}, Adopt: true}, nil},
		{"upgrade re-pins",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o1))},
			Change{Files: []string{path}, Repin: true, Replaced: []ConfFile{conf(t, path, o1, ex)}, Adopt: true}, []string{"replace oldway"}},
		{"upgrade replaces the old definition",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o2))},
			Change{Files: []string{path}, Repin: true, Replaced: []ConfFile{conf(t, path, o1)}, Adopt: true}, []string{"replace oldway"}},
		{"upgrade drops what the file no longer defines",
			Snapshot{Live: live(t, o1, ex), Files: files(conf(t, path, o1))},
			Change{Files: []string{path}, Repin: true, Replaced: []ConfFile{conf(t, path, o1, ex)}, Adopt: true}, []string{"replace oldway", "unregister oldway-extra"}},
		{"without the old version, a changed definition is someone else's",
			Snapshot{Live: live(t, o1), Files: files(conf(t, path, o2))},
			Change{Files: []string{path}, Repin: true, Adopt: true}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, st := range Plan(c.snap, c.ch).Steps {
				if st.Action != Leave {
					got = append(got, string(st.Action)+" "+st.Name)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("steps %q, want %q", got, c.want)
			}
		})
	}
}

// TestPlanSwapRule: the swap from Fedora's package, decided by Plan for
// our %post.
func TestPlanSwapRule(t *testing.T) {
	conf := ConfFile{Path: ours.File, Lines: []binfmt.Line{ours}}
	mine := []string{"/usr/bin/qemu-aarch64-static", ours.File}
	cases := []struct {
		name  string
		live  binfmt.Line
		files []string
		want  Action
	}{
		{"Fedora's, left behind: ours replaces it and claims it", fedora, mine, Replace},
		{"an interpreter that is not ours: someone else's", mustLine(t, "", ":qemu-aarch64:M::X::/usr/local/bin/qemu-aarch64:"), mine, Leave},
		{"a path that cleans to ours", mustLine(t, "", ":qemu-aarch64:M::X::/usr/bin/../bin/qemu-aarch64-static:"), mine, Replace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := Snapshot{Live: map[string]binfmt.Live{"qemu-aarch64": liveOf(c.live)}, Files: map[string][]ConfFile{"qemu-aarch64-static.conf": {conf}}}
			res := Plan(snap, Change{Package: "qemu-user-static-go", Files: c.files, Adopt: true})
			var got Action = Leave
			for _, st := range res.Steps {
				if st.Name == "qemu-aarch64" {
					got = st.Action
				}
			}
			if got != c.want {
				t.Fatalf("action %s, want %s (%+v)", got, c.want, res.Steps)
			}
			if c.want == Replace && !res.Records["qemu-user-static-go"].Owns(liveOf(ours)) {
				t.Errorf("our record does not claim our definition: %+v", res.Records)
			}
		})
	}
}

func sampleTxState() *TxState {
	return &TxState{
		ID:         "4242 88123",
		Ran:        []string{StepLeaving, "gone /usr/lib/binfmt.d/a.conf"},
		SnapshotBy: StepGuardBefore,
		Snapshot:   []RawEntry{rawOf(admin, false), rawOf(docker, true)},
		HasEarly:   true,
		Early:      []RawEntry{{Name: "x", Ino: 77, Raw: []byte("enabled\n")}},
		Leaving: []LeavingFile{
			{Path: "/usr/lib/binfmt.d/a b.conf", Owners: []Owner{{Name: "a"}, {Name: "b", Hooks: true}}, Lines: []string{oldway.Raw, extra.Raw}},
			{Path: "/etc/binfmt.d/x.conf"},
		},
		Seen: []LeavingFile{
			{Path: "/usr/lib/binfmt.d/qemu-aarch64_be-static.conf", Lines: []string{fedora.Raw}},
			{Path: "/usr/lib/binfmt.d/empty.conf"},
		},
	}
}

func TestTxStateRoundTrip(t *testing.T) {
	s := sampleTxState()
	got, err := ParseTxState(s.Render())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n%#v\nwant\n%#v", got, s)
	}
	for _, bad := range []string{
		"", "# binfmtctl transaction 2\nid 1 2\n", "# binfmtctl transaction 1\n",
		"# binfmtctl transaction 1\nid 1 2\nentry x\n", "# binfmtctl transaction 1\nid 1 2\n  enabled\n",
		"# binfmtctl transaction 1\nid 1 2\nowner a plain\n", "# binfmtctl transaction 1\nid 1 2\nfile rel\n",
		"# binfmtctl transaction 1\nid 1 2\nwhat\n",
		"# binfmtctl transaction 1\nid 1 2\nseen /a.conf\nowner a plain\n", "# binfmtctl transaction 1\nid 1 2\nseen rel\n",
	} {
		if _, err := ParseTxState([]byte(bad)); err == nil {
			t.Errorf("ParseTxState(%q) accepted it", bad)
		}
	}
}

func TestTxStoreStaleAndFresh(t *testing.T) {
	ts := TxStore{Dir: t.TempDir() + "/run/binfmtctl"}
	s, err := ts.Load("1 1")
	if err != nil || s.ID != "1 1" || len(s.Ran) != 0 {
		t.Fatalf("fresh load: %+v, %v", s, err)
	}
	s.Ran = append(s.Ran, StepGuardBefore)
	if err := ts.Save(s); err != nil {
		t.Fatal(err)
	}
	if again, _ := ts.Load("1 1"); !again.HasRun(StepGuardBefore) {
		t.Errorf("the same transaction does not see its step")
	}
	if other, _ := ts.Load("1 2"); other.HasRun(StepGuardBefore) {
		t.Errorf("another transaction (same pid, other start) sees the step")
	}
}

func TestTxIDOfThisProcess(t *testing.T) {
	a, err := TxID("/proc", 1)
	if err == nil {
		t.Errorf("pid 1 accepted: %q", a)
	}
	id, err := TxID("/proc", pidSelf())
	if err != nil || !strings.HasPrefix(id, fmt.Sprint(pidSelf())+" ") {
		t.Errorf("TxID(self) = %q, %v", id, err)
	}
}

func TestParseHookOwners(t *testing.T) {
	out := "@@ qemu-user-static-go\n'# %post\n/usr/bin/binfmtctl hook post '\\''qemu-user-static-go-1-1'\\'' \"$1\" || :'\n/usr/bin/binfmtctl\n/usr/lib/binfmt.d/qemu-aarch64-static.conf\n" +
		"file /nowhere is not owned by any package\n" +
		"@@ oldway\n(none)\n/usr/lib/binfmt.d/oldway.conf\n" +
		"@@ tricky\n'echo '\\''\n@@ fake\n/usr/lib/binfmt.d/x.conf'\n/usr/lib/binfmt.d/t.conf\n"
	got, err := ParseHookOwners(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []OwnedFiles{
		{Owner{"qemu-user-static-go", true}, []string{"/usr/bin/binfmtctl", "/usr/lib/binfmt.d/qemu-aarch64-static.conf"}},
		{Owner{"oldway", false}, []string{"/usr/lib/binfmt.d/oldway.conf"}},
		{Owner{"tricky", false}, []string{"/usr/lib/binfmt.d/t.conf"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseOwners:\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{"@@ x\n'unterminated\n", "@@ \n(none)\n", "@@ x\nnot quoted\n"} {
		if _, err := ParseHookOwners(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseHookOwners(%q) accepted it", bad)
		}
	}
}

func FuzzParseTxState(f *testing.F) {
	f.Add(sampleTxState().Render())
	f.Add([]byte("# binfmtctl transaction 1\nid 1 2\nsnapshot guard-after\nentry a\n  enabled\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseTxState(data)
		if err != nil {
			return
		}
		// What parses renders to something that parses the same.
		again, err := ParseTxState(s.Render())
		if err != nil {
			t.Fatalf("the rendering of a parsed state does not parse: %v\n%q", err, s.Render())
		}
		if !bytes.Equal(again.Render(), s.Render()) {
			t.Fatalf("rendering is not stable:\n%q\n%q", s.Render(), again.Render())
		}
	})
}

func FuzzParseHookOwners(f *testing.F) {
	f.Add([]byte("@@ a\n'x'\n/usr/lib/binfmt.d/a.conf\n"))
	f.Add([]byte("@@ b\n(none)\n/x\n@@ c\n'it'\\''s\n'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseHookOwners(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, p := range got {
			if ValidPackage(p.Owner.Name) != nil {
				t.Fatalf("owner %q is not a package name", p.Owner.Name)
			}
			for _, f := range p.Files {
				if !strings.HasPrefix(f, "/") || strings.Contains(f, "\n") {
					t.Fatalf("file %q", f)
				}
			}
		}
	})
}

func pidSelf() int { return os.Getpid() }

func TestFlushed(t *testing.T) {
	before := []RawEntry{{Name: "admin", Ino: 5}, {Name: "qemu-aarch64", Ino: 6}}
	disk := map[string]binfmt.Line{"qemu-aarch64": ours}
	cases := []struct {
		name    string
		now     []RawEntry
		leaving []binfmt.Entry
		want    bool
	}{
		{"untouched", []RawEntry{{Name: "admin", Ino: 5}, {Name: "qemu-aarch64", Ino: 9}}, nil, false},
		{"admin gone", []RawEntry{{Name: "qemu-aarch64", Ino: 9}}, nil, true},
		{"admin registered again", []RawEntry{{Name: "admin", Ino: 12}, {Name: "qemu-aarch64", Ino: 13}}, nil, true},
		{"admin's name was a leaving file's", nil, []binfmt.Entry{{Name: "admin"}}, false},
	}
	for _, c := range cases {
		if got := Flushed(before, c.now, disk, c.leaving); got != c.want {
			t.Errorf("%s: Flushed = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFlushToCome: guard-after names the entries a flush still to come
// takes for good (issue 13 point 1, "detect the wrong order and say so"),
// and nothing once the flush is over or when every entry is a file's.
func TestFlushToCome(t *testing.T) {
	snap := []RawEntry{{Name: "admin", Ino: 5}, {Name: "qemu-aarch64", Ino: 6}, {Name: "docker", Ino: 7}}
	disk := map[string]binfmt.Line{"qemu-aarch64": ours}
	cases := []struct {
		name    string
		snap    []RawEntry
		now     []RawEntry
		leaving []binfmt.Entry
		want    []string
	}{
		{"not flushed yet: the entries no file defines", snap, snap, nil, []string{"admin", "docker"}},
		{"a file's entry registered again by a hook: still to come", snap, []RawEntry{{Name: "admin", Ino: 5}, {Name: "qemu-aarch64", Ino: 9}, {Name: "docker", Ino: 7}}, nil, []string{"admin", "docker"}},
		{"flushed and put back: over", snap, []RawEntry{{Name: "admin", Ino: 12}, {Name: "qemu-aarch64", Ino: 13}, {Name: "docker", Ino: 14}}, nil, nil},
		{"flushed, one not put back: over", snap, []RawEntry{{Name: "admin", Ino: 12}, {Name: "qemu-aarch64", Ino: 13}}, nil, nil},
		{"a leaving file's entry is not at risk", snap, snap, []binfmt.Entry{{Name: "docker"}}, []string{"admin"}},
		{"only file-defined entries", []RawEntry{{Name: "qemu-aarch64", Ino: 6}}, []RawEntry{{Name: "qemu-aarch64", Ino: 6}}, nil, nil},
	}
	for _, c := range cases {
		if got := FlushToCome(c.snap, c.now, disk, c.leaving); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: FlushToCome = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestMergeEarly(t *testing.T) {
	before := []RawEntry{{Name: "admin", Ino: 5}, {Name: "qemu-aarch64", Ino: 6}}
	now := []RawEntry{{Name: "qemu-aarch64", Ino: 9}, {Name: "new", Ino: 10}}
	got := MergeEarly(before, now)
	want := []RawEntry{{Name: "qemu-aarch64", Ino: 9}, {Name: "new", Ino: 10}, {Name: "admin", Ino: 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeEarly = %+v, want %+v", got, want)
	}
	if got := MergeEarly(nil, now); !reflect.DeepEqual(got, now) {
		t.Errorf("first look: %+v", got)
	}
}

// TestAskOwners: a trigger step asks rpm who owns its files only when a
// record claims a name one of them defines, or a record could not be
// read whole; then once, for all of them.
func TestAskOwners(t *testing.T) {
	claimed := map[string]bool{"qemu-aarch64": true, "qemu-riscv64": true}
	cases := []struct {
		name     string
		defines  [][]string
		claimed  map[string]bool
		complete bool
		want     bool
	}{
		{"no files", nil, claimed, true, false},
		{"an old-way file, no record claims it", [][]string{{"oldway"}}, claimed, true, false},
		{"no records at all", [][]string{{"qemu-aarch64"}}, nil, true, false},
		{"a file that defines nothing", [][]string{nil}, claimed, true, false},
		{"a record claims what the file defines", [][]string{{"qemu-aarch64"}}, claimed, true, true},
		{"a record claims one name of a file", [][]string{{"oldway", "qemu-riscv64"}}, claimed, true, true},
		{"a record claims what another file of the step defines", [][]string{{"oldway"}, {"qemu-aarch64"}}, claimed, true, true},
		{"a damaged record", [][]string{{"oldway"}}, claimed, false, true},
		{"a damaged record, no files' names", [][]string{nil}, nil, false, true},
	}
	for _, c := range cases {
		if got := AskOwners(c.defines, c.claimed, c.complete); got != c.want {
			t.Errorf("%s: AskOwners(%q, %v, %v) = %v, want %v", c.name, c.defines, c.claimed, c.complete, got, c.want)
		}
	}
}
