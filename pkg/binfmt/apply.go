package binfmt

import (
	"errors"
	"fmt"
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
// registered. Interpreters are checked under root first (CheckInterpreter).
// Every line is tried; failures are reported per line.
func (f *FS) Apply(lines []Line, root string) []Result {
	results := make([]Result, 0, len(lines))
	c := newChecker(root)
	for _, l := range lines {
		r := Result{Line: l}
		r.Warnings, r.Err = c.check(l.Entry)
		if r.Err == nil {
			r.Action, r.Err = f.apply(l)
		}
		if r.Err != nil {
			r.Action = Failed
			r.Err = &LineError{File: l.File, Num: l.Num, Err: r.Err}
		}
		results = append(results, r)
	}
	return results
}

func (f *FS) apply(l Line) (Action, error) {
	s := l.RegisterLine()
	live, err := f.Entry(l.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := f.RegisterString(l.Name, s); err != nil {
			return Failed, err
		}
		return Registered, nil
	case err != nil:
		return Failed, err
	case live.Enabled && live.Matches(l.Entry):
		return Unchanged, nil
	}
	if err := f.Unregister(l.Name); err != nil && !errors.Is(err, ErrNotFound) {
		return Failed, err
	}
	if err := f.RegisterString(l.Name, s); err != nil {
		return Failed, fmt.Errorf("%w (the previous entry %q was removed to replace it)", err, l.Name)
	}
	return Replaced, nil
}
