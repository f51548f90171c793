// Package bench measures the project against the tools users would run
// otherwise, in the same run, and reports ratios: binfmtctl against
// systemd-binfmt for registration, and the floor below both.
//
// Whole processes are compared by interleaving A and B runs, so that a
// change in the machine's load hits both alike; each figure is a median
// with its min–max. `make bench` runs the measurements with more rounds
// and writes docs/benchmarks.md; `make test` runs the same comparisons
// with few rounds and a generous margin, so that a regression fails CI
// without noise making it flaky.
package bench

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// Sample is a set of timings of one thing.
type Sample []time.Duration

// Median returns the median.
func (s Sample) Median() time.Duration {
	c := append(Sample(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	if len(c) == 0 {
		return 0
	}
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Min returns the smallest timing.
func (s Sample) Min() time.Duration {
	m := time.Duration(0)
	for i, d := range s {
		if i == 0 || d < m {
			m = d
		}
	}
	return m
}

// Max returns the largest timing.
func (s Sample) Max() time.Duration {
	m := time.Duration(0)
	for _, d := range s {
		if d > m {
			m = d
		}
	}
	return m
}

// String formats the sample as "median (min–max)".
func (s Sample) String() string {
	return fmt.Sprintf("%s (%s–%s)", ms(s.Median()), ms(s.Min()), ms(s.Max()))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// Interleave runs each of fns once per round, in turn, for rounds rounds,
// and returns one sample per fn. Each fn returns the time it measured
// itself, so that set-up and clean-up are left out. A first round, not
// recorded, brings the binaries into the page cache; after it, each round
// starts with the next fn, so that none always follows the same one.
func Interleave(rounds int, fns ...func() time.Duration) []Sample {
	// The collector stays off while the rounds run: a collection in this
	// process would run on the same few CPUs as the programs it times.
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, f := range fns {
		f()
	}
	out := make([]Sample, len(fns))
	for r := 0; r < rounds; r++ {
		for k := range fns {
			i := (r + k) % len(fns)
			out[i] = append(out[i], fns[i]())
		}
	}
	return out
}

// Ratio is a's median over b's.
func Ratio(a, b Sample) float64 {
	return float64(a.Median()) / float64(b.Median())
}

// Table renders rows as a Markdown table.
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
