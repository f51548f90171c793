package binfmtctl

import "fmt"

// errorf is fmt.Errorf, called rather than inlined: since Go 1.26
// fmt.Errorf inlines its no-argument case (errors.New) into every
// caller, and the helper has some two hundred of them.
//
//go:noinline
func errorf(format string, a ...any) error {
	return fmt.Errorf(format, a...)
}
