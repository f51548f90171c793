package buildtool

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
)

func TestClosest(t *testing.T) {
	names := commandNames()
	for _, c := range []struct{ in, want string }{
		{"biuld", "build"},  // swapped letters
		{"buidl", "build"},  // swapped at the end
		{"buld", "build"},   // a letter missing
		{"builds", "build"}, // a letter too many
		{"bu", "build"},     // a prefix
		{"insepct", "inspect"},
		{"inpsect", "inspect"},
		{"ins", "inspect"},
		{"cnf", "conf"},
		{"con", "conf"},
		{"hlep", "help"},
		{"b", ""}, // one letter is no prefix worth guessing from
		{"frobnicate", ""},
		{"", ""},
		{"install", ""}, // far from inspect
		{"rpm", ""},
	} {
		if got := closest(c.in, names); got != c.want {
			t.Errorf("closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"build", "build", 0},
		{"biuld", "build", 1},
		{"", "conf", 4},
		{"conf", "", 4},
		{"kitten", "sitting", 3},
		{"ca", "abc", 3}, // optimal string alignment, not full Damerau
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := editDistance(c.b, c.a); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

func TestProgressText(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		p    assemble.Progress
		want string
	}{
		{assemble.Progress{Path: "/out/p.rpm", Done: 0, Total: 100 * mib}, "compressing p.rpm: 0 B of 100.0 MiB (0%)"},
		{assemble.Progress{Path: "/out/p.rpm", Done: 25 * mib, Total: 100 * mib, Elapsed: time.Second}, "compressing p.rpm: 25.0 MiB of 100.0 MiB (25%), 25.0 MiB/s, 3s left"},
		{assemble.Progress{Path: "p.rpm", Done: 99 * mib, Total: 100 * mib, Elapsed: 10 * time.Second}, "compressing p.rpm: 99.0 MiB of 100.0 MiB (99%), 9.9 MiB/s, under 1s left"},
		{assemble.Progress{Path: "p.rpm", Done: 512, Total: 3 << 30, Elapsed: time.Minute}, "compressing p.rpm: 512 B of 3.0 GiB (0%), 8 B/s"},
		{assemble.Progress{Path: "p.rpm", Done: 2048, Total: 4096, Elapsed: time.Second}, "compressing p.rpm: 2.0 KiB of 4.0 KiB (50%), 2.0 KiB/s, 1s left"},
	} {
		got := progressText(c.p)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("progressText(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
	got := progressDone(assemble.Progress{Done: 300 * mib, Total: 300 * mib, Elapsed: 2500 * time.Millisecond})
	if want := "compressed 300.0 MiB of files in 2.5s, 120.0 MiB/s"; got != want {
		t.Errorf("progressDone = %q, want %q", got, want)
	}
}

// steps feeds a progressLine 1 MiB at a time over total MiB, one tick
// apart, and returns what it printed.
func steps(terminal bool, total int64, tick time.Duration, paths ...string) string {
	var b bytes.Buffer
	l := newProgressLine(&b, terminal)
	for _, path := range paths {
		for i := int64(1); i <= total; i++ {
			l.update(assemble.Progress{Path: path, Done: i << 20, Total: total << 20, Elapsed: time.Duration(i) * tick})
		}
		// A repeated final report (rpmfile counts a recompressed
		// last frame again) prints nothing more.
		l.update(assemble.Progress{Path: path, Done: total << 20, Total: total << 20, Elapsed: time.Duration(total+1) * tick})
	}
	return b.String()
}

func TestProgressLine(t *testing.T) {
	t.Run("plain: one line a quarter, then the total", func(t *testing.T) {
		out := steps(false, 40, 50*time.Millisecond, "a.rpm")
		want := "compressing a.rpm: 10.0 MiB of 40.0 MiB (25%), 20.0 MiB/s, 2s left\n" +
			"compressing a.rpm: 20.0 MiB of 40.0 MiB (50%), 20.0 MiB/s, 1s left\n" +
			"compressing a.rpm: 30.0 MiB of 40.0 MiB (75%), 20.0 MiB/s, 1s left\n" +
			"compressed 40.0 MiB of files in 2s, 20.0 MiB/s\n"
		if out != want {
			t.Errorf("got\n%s\nwant\n%s", out, want)
		}
	})
	t.Run("plain: a step over two quarters prints one line", func(t *testing.T) {
		out := steps(false, 2, time.Second, "a.rpm")
		if n := strings.Count(out, "\n"); n != 2 {
			t.Errorf("%d lines, want 2 (50%% and the total):\n%s", n, out)
		}
	})
	t.Run("terminal: redrawn in place, at most every 100ms", func(t *testing.T) {
		// 40 steps 50ms apart: drawn at the first and then every other.
		out := steps(true, 40, 50*time.Millisecond, "a.rpm")
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\rcompressed 40.0 MiB of files in 2s, 20.0 MiB/s\x1b[K\n") {
			t.Errorf("the line is not finished with the total: %q", out)
		}
		if n := strings.Count(out, "\rcompressing a.rpm: "); n != 20 {
			t.Errorf("drawn %d times, want 20: %q", n, out)
		}
		if n := strings.Count(out, "\x1b[K"); n != 21 {
			t.Errorf("cleared %d times, want 21", n)
		}
		if !strings.HasPrefix(out, "\rcompressing a.rpm: 1.0 MiB of 40.0 MiB (2%), 20.0 MiB/s, 2s left\x1b[K") {
			t.Errorf("first draw %q", out[:80])
		}
	})
	t.Run("a second package starts afresh", func(t *testing.T) {
		out := steps(false, 4, time.Second, "a.rpm", "b.rpm")
		if strings.Count(out, "compressed ") != 2 || strings.Count(out, "compressing b.rpm") != 3 {
			t.Errorf("got\n%s", out)
		}
	})
	t.Run("an empty payload", func(t *testing.T) {
		var b bytes.Buffer
		newProgressLine(&b, false).update(assemble.Progress{Path: "e.rpm"})
		if got := b.String(); got != "compressed 0 B of files in 0s\n" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("a line left unfinished is cleared at the end", func(t *testing.T) {
		var b bytes.Buffer
		l := newProgressLine(&b, true)
		l.update(assemble.Progress{Path: "a.rpm", Done: 1, Total: 2})
		l.end()
		l.end()
		if got := b.String(); !strings.HasSuffix(got, "\x1b[K\r\x1b[K") || strings.Count(got, "\r") != 2 {
			t.Errorf("got %q", got)
		}
		b.Reset()
		l = newProgressLine(&b, true)
		l.update(assemble.Progress{Path: "a.rpm", Done: 2, Total: 2})
		l.end()
		if got := b.String(); strings.Count(got, "\r") != 1 {
			t.Errorf("a finished line is cleared again: %q", got)
		}
	})
}
