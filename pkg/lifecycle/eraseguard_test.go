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
	for _, c := range []struct {
		name          string
		snapshot, now []RawEntry
		onDisk        map[string]binfmt.Line
		gone          []binfmt.Entry
		want          bool
	}{
		{"nothing happened (plain erase: no binfmt.d file installed)", []RawEntry{a, q}, []RawEntry{a, q}, defs(ours), nil, false},
		{"our erase unregistered ours, the administrator's stays", []RawEntry{a, q}, []RawEntry{a}, nil, []binfmt.Entry{ours.Entry}, false},
		{"systemd-binfmt flushed and registered the files", []RawEntry{a, q}, []RawEntry{withIno(q, 20)}, defs(ours), nil, true},
		{"flushed, and no file is left at all", []RawEntry{a}, nil, nil, nil, true},
		{"the administrator's entry registered anew: a flush", []RawEntry{a}, []RawEntry{withIno(a, 30)}, nil, nil, true},
		{"one entry gone, another as it was: someone unregistered it, no flush", []RawEntry{a, withIno(rawOf(docker, true), 13)}, []RawEntry{a}, nil, nil, false},
		{"only file-defined entries changed: nothing a flush took for good", []RawEntry{q}, []RawEntry{withIno(q, 21)}, defs(ours), nil, false},
		{"only what a removed file defined is gone", []RawEntry{o}, nil, nil, []binfmt.Entry{oldway.Entry}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FlushedSince(c.snapshot, c.now, c.onDisk, c.gone); got != c.want {
				t.Errorf("FlushedSince = %v, want %v", got, c.want)
			}
		})
	}
}
