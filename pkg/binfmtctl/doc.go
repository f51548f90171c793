// Package binfmtctl is the command line of the binfmtctl helper: a thin
// layer that checks flags, calls pkg/binfmt or pkg/lifecycle, prints the
// result and returns an honest exit code.
//
// It links only the standard library and x/sys, because the same binary
// runs inside every rpm transaction of a package that uses it and must
// start fast: it parses its flags itself (flags.go) rather than with
// pflag, whose imports are initialised at every start-up.
package binfmtctl
