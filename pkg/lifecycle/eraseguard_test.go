package lifecycle

import (
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

func withIno(e RawEntry, ino uint64) RawEntry { e.Ino = ino; return e }

func defs(ls ...binfmt.Line) map[string]binfmt.Line {
	m := map[string]binfmt.Line{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

func TestAtRisk(t *testing.T) {
	// Someone else's qemu-aarch64 in place of ours: another
	// interpreter, which our file (going with our package) does not
	// define.
	replaced := mustLine(nil, "", ":qemu-aarch64:M::\\x7fELF\\x02::/opt/admin/qemu-aarch64:F")
	for _, c := range []struct {
		name   string
		entry  RawEntry
		onDisk map[string]binfmt.Line
		want   bool
	}{
		{"a file defines it: systemd-binfmt registers it again", rawOf(ours, true), defs(ours), false},
		{"a file defines it, disabled", rawOf(oldway, false), defs(oldway), false},
		{"the administrator's entry", rawOf(admin, false), defs(ours), true},
		{"a docker-style entry", rawOf(docker, true), nil, true},
		{"an empty table of files", rawOf(admin, true), nil, true},
		// Regression: the hook leaves an entry of ours that someone
		// else replaced; our file still defines the name at the %preun,
		// but goes with our package.
		{"a file defines the name with another interpreter", rawOf(replaced, true), defs(ours), true},
		// What the comparison does not see: the interpreter alone.
		{"a file defines the name with the same interpreter, another magic", rawOf(oldway2, true), defs(oldway), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := AtRisk(c.entry, c.onDisk); got != c.want {
				t.Errorf("AtRisk = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFlushedSince(t *testing.T) {
	a, o, q := withIno(rawOf(admin, false), 10), withIno(rawOf(oldway, true), 11), withIno(rawOf(ours, true), 12)
	d := withIno(rawOf(docker, true), 13)
	for _, c := range []struct {
		name          string
		snapshot, now []RawEntry
		onDisk        map[string]binfmt.Line
		want          bool
	}{
		{"nothing happened (plain erase: no binfmt.d file installed)", []RawEntry{a, q}, []RawEntry{a, q}, defs(ours), false},
		{"our erase unregistered ours, the administrator's stays", []RawEntry{a, q}, []RawEntry{a}, nil, false},
		{"systemd-binfmt flushed and registered the files", []RawEntry{a, q}, []RawEntry{withIno(q, 20)}, defs(ours), true},
		{"flushed, and a file another package installed registered (the swap back)", []RawEntry{a, d}, []RawEntry{withIno(o, 21)}, defs(oldway), true},
		{"one entry gone, another as it was: someone unregistered it, no flush", []RawEntry{a, d}, []RawEntry{a}, nil, false},
		// Regression: another package's scriptlet unregistered the
		// only entry no file defines, its own, and nothing flushed.
		{"every entry gone, nothing registered since: a scriptlet unregistered them, no flush", []RawEntry{d}, nil, nil, false},
		{"every entry gone, files on disk registered nothing since", []RawEntry{a}, nil, defs(oldway), false},
		{"only what a removed file defined is gone", []RawEntry{o}, nil, nil, false},
		{"the administrator's entry registered anew, no file registered: not systemd-binfmt", []RawEntry{a}, []RawEntry{withIno(a, 30)}, nil, false},
		{"a file-defined entry kept its inode: no flush", []RawEntry{a, q}, []RawEntry{q}, defs(ours), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FlushedSince(c.snapshot, c.now, c.onDisk); got != c.want {
				t.Errorf("FlushedSince = %v, want %v", got, c.want)
			}
		})
	}
}
