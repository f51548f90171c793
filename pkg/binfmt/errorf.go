package binfmt

import (
	"fmt"
	"path/filepath"
)

// errorf is fmt.Errorf, called rather than inlined: since Go 1.26
// fmt.Errorf inlines its no-argument case (errors.New) into every
// caller, and the helper has some two hundred of them.
//
//go:noinline
func errorf(format string, a ...any) error {
	return fmt.Errorf(format, a...)
}

// joinPath is filepath.Join of two elements, called rather than inlined
// into each of its callers: one copy keeps binfmtctl small.
//
//go:noinline
func joinPath(a, b string) string {
	return filepath.Join(a, b)
}
