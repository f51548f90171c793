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

func TestEraseGuardNeeded(t *testing.T) {
	for _, c := range []struct {
		name     string
		snapshot []RawEntry
		onDisk   map[string]binfmt.Line
		want     bool
	}{
		{"empty table", nil, nil, false},
		{"only file-defined entries: systemd-binfmt registers them again", []RawEntry{rawOf(ours, true), rawOf(oldway, true)}, defs(ours, oldway), false},
		{"a file defines the name otherwise: still the file's after a flush", []RawEntry{rawOf(oldway2, true)}, defs(oldway), false},
		{"the administrator's entry", []RawEntry{rawOf(ours, true), rawOf(admin, false)}, defs(ours), true},
		{"a docker-style entry", []RawEntry{rawOf(docker, true)}, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := EraseGuardNeeded(c.snapshot, c.onDisk); got != c.want {
				t.Errorf("EraseGuardNeeded = %v, want %v", got, c.want)
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
		// Regression (R2): another package's scriptlet unregistered the
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
