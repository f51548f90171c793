// Package binfmtctl is the command line of the binfmtctl helper: a thin
// layer that checks flags, calls pkg/binfmt or pkg/lifecycle, prints the
// result and returns an honest exit code.
//
// It links only the standard library, pflag and x/sys, because the same
// binary runs inside every rpm transaction of a package that uses it and
// must start fast.
package binfmtctl
