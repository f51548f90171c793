package bench

import (
	"strings"
	"testing"
	"time"
)

// TestInterleave checks the order Interleave runs its functions in: one
// unrecorded warm-up round, then rounds that each start one further on.
func TestInterleave(t *testing.T) {
	var order strings.Builder
	fn := func(name string, d time.Duration) func() time.Duration {
		return func() time.Duration { order.WriteString(name); return d }
	}
	s := Interleave(3, fn("a", 1), fn("b", 2), fn("c", 3))
	if got, want := order.String(), "abc"+"abc"+"bca"+"cab"; got != want {
		t.Errorf("ran %q, want %q", got, want)
	}
	for i, want := range []time.Duration{1, 2, 3} {
		if len(s[i]) != 3 || s[i].Median() != want {
			t.Errorf("sample %d = %v, want three of %v", i, s[i], want)
		}
	}
}
