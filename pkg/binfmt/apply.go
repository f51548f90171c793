package binfmt

import (
	"errors"
	"slices"

	"golang.org/x/sys/unix"
)

// Action says what Apply did with one entry.
type Action string

// Actions reported by Apply.
const (
	Registered Action = "registered"
	Replaced   Action = "replaced"
	Unchanged  Action = "unchanged"
	Failed     Action = "failed"
)

// Result is the outcome for one configuration line.
type Result struct {
	Line     Line
	Action   Action
	Err      error
	Warnings []string
}

// Apply registers each line the way systemd-binfmt does, but without
// disturbing an entry that is already exactly right: a live entry of the
// same name that is enabled and matches is left as it is, one that
// differs is unregistered and registered again, and an absent one is
// registered. Interpreters are checked under root first (CheckInterpreter),
// and, unless f.AllowNative, an entry that matches the host's own
// programs or its own interpreter is refused (CheckNative).
// Every line is tried; failures are reported per line.
func (f *FS) Apply(lines []Line, root string) []Result {
	results := make([]Result, 0, len(lines))
	c := newChecker(root)
	// One listing instead of one failed read per absent entry. Should
	// the listing fail, every entry is read, and that read reports why.
	// A few dozen names are searched faster than a map is built.
	live, err := f.Names()
	listed := err == nil
	// One descriptor for every registration. Should it fail to open,
	// each registration opens the file itself and reports why.
	reg, err := openWrite(f.registerPath())
	if err != nil {
		reg = -1
	} else {
		defer unix.Close(reg)
	}
	var buf []byte
	var native []NativeSample
	if !f.AllowNative && len(lines) > 0 {
		native = NativeSamples()
	}
	for i, l := range lines {
		r := Result{Line: l}
		r.Warnings, r.Err = c.check(l.Entry)
		if r.Err == nil && !f.AllowNative {
			if r.Err = CheckNative(l.Entry, native, root); r.Err != nil {
				// The refusal is the one thing to say about it.
				r.Warnings = nil
			}
		}
		if r.Err == nil {
			// An earlier line of the same name may have registered it.
			mayExist := !listed || slices.Contains(live, l.Name) ||
				slices.ContainsFunc(lines[:i], func(e Line) bool { return e.Name == l.Name })
			buf = append(buf[:0], l.RegisterLine()...)
			r.Action, r.Err = f.apply(l, mayExist, reg, buf)
		}
		if r.Err != nil {
			r.Action = Failed
			r.Err = &LineError{File: l.File, Num: l.Num, Err: r.Err}
		}
		results = append(results, r)
	}
	return results
}

// apply registers l, writing s, its register line, to reg, the open
// register file or -1. mayExist is false when the listing taken at the
// start shows no entry called l.Name.
func (f *FS) apply(l Line, mayExist bool, reg int, s []byte) (Action, error) {
	var cur Live
	err := ErrNotFound
	if mayExist {
		cur, err = f.Entry(l.Name)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		if err := f.registerOn(reg, l.Name, s); err != nil {
			return Failed, err
		}
		return Registered, nil
	case err != nil:
		return Failed, err
	case cur.Enabled && cur.Matches(l.Entry):
		return Unchanged, nil
	}
	if err := f.Unregister(l.Name); err != nil && !errors.Is(err, ErrNotFound) {
		return Failed, err
	}
	if err := f.registerOn(reg, l.Name, s); err != nil {
		return Failed, errorf("%w (the previous entry %q was removed to replace it)", err, l.Name)
	}
	return Replaced, nil
}
