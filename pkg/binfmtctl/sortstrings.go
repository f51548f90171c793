package binfmtctl

import "sort"

// sortStrings sorts s in increasing order. sort.Strings and slices.Sort
// each instantiate slices' generic pdqsort for strings (about 10 kB of
// the helper); sort.Slice's one non-generic sort is linked anyway, and
// strings that compare equal are equal, so the order is the same.
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func sortStrings(s []string) {
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
}
