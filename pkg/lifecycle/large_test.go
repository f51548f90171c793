package lifecycle

import (
	"fmt"
	"strings"
)

// LargeLines returns n binfmt.d lines with 128-byte magics and masks, the
// entries of issue 16's point 6. The magic is printable, so the line is
// its own escape.
func LargeLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		magic := fmt.Sprintf("%0128d", i)
		out[i] = fmt.Sprintf(":big-%04d:M::%s:%s:/usr/bin/interp:", i, magic, strings.Repeat("\\xff", 128))
	}
	return out
}
