package buildtool

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
)

// redrawEvery is how often a terminal's progress line is redrawn: often
// enough to look alive, rarely enough to cost nothing.
const redrawEvery = 100 * time.Millisecond

// progressLine shows how far build's payload is on w. On a terminal it is
// one line redrawn in place; elsewhere (a log, a pipe) it is a plain line
// at each quarter of the payload, so that a log shows the build moving
// without a line per megabyte. Both end with a line of the size, the time
// and the rate.
type progressLine struct {
	w        io.Writer
	terminal bool

	path     string        // the package being shown
	drawn    time.Duration // terminal: when the line was last drawn; -1 before
	quarter  int64         // plain: the last quarter printed
	finished bool
}

func newProgressLine(w io.Writer, terminal bool) *progressLine {
	return &progressLine{w: w, terminal: terminal, drawn: -1}
}

// update is assemble.Options.Progress. It takes the time from p.Elapsed,
// so that what it prints depends only on what it is given.
func (l *progressLine) update(p assemble.Progress) {
	if p.Path != l.path {
		// The next package starts afresh.
		*l = progressLine{w: l.w, terminal: l.terminal, path: p.Path, drawn: -1}
	}
	if l.finished {
		return
	}
	if p.Done >= p.Total {
		l.finished = true
		if l.terminal {
			fmt.Fprintf(l.w, "\r%s\x1b[K\n", progressDone(p))
		} else {
			fmt.Fprintln(l.w, progressDone(p))
		}
		return
	}
	if l.terminal {
		if l.drawn < 0 || p.Elapsed-l.drawn >= redrawEvery {
			l.drawn = p.Elapsed
			// \r goes back to the start of the line and ESC [ K
			// clears what a longer line before left on it.
			fmt.Fprintf(l.w, "\r%s\x1b[K", progressText(p))
		}
		return
	}
	if q := p.Done * 4 / p.Total; q > l.quarter {
		l.quarter = q
		fmt.Fprintln(l.w, progressText(p))
	}
}

// end clears a terminal line left unfinished (the build failed or was
// interrupted), so that the error that follows starts a line of its own.
func (l *progressLine) end() {
	if l.terminal && l.drawn >= 0 && !l.finished {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.finished = true
	}
}

// progressText describes a payload under way: "compressing NAME: 12.0 MiB
// of 48.0 MiB (25%), 40.0 MiB/s, 1s left".
func progressText(p assemble.Progress) string {
	s := fmt.Sprintf("compressing %s: %s of %s (%d%%)", filepath.Base(p.Path), size(p.Done), size(p.Total), p.Done*100/max(p.Total, 1))
	if p.Done == 0 || p.Elapsed <= 0 {
		return s
	}
	rate := float64(p.Done) / p.Elapsed.Seconds()
	left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second)).Round(time.Second)
	when := left.String() + " left"
	if left < time.Second {
		when = "under 1s left"
	}
	return fmt.Sprintf("%s, %s/s, %s", s, size(int64(rate)), when)
}

// progressDone describes a finished payload: "compressed 48.0 MiB in
// 1.2s, 40.0 MiB/s".
func progressDone(p assemble.Progress) string {
	s := fmt.Sprintf("compressed %s of files in %s", size(p.Total), p.Elapsed.Round(100*time.Millisecond))
	if p.Elapsed > 0 {
		s += fmt.Sprintf(", %s/s", size(int64(float64(p.Total)/p.Elapsed.Seconds())))
	}
	return s
}

// size writes n bytes in binary units, as ls -h and rpm do.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// isTerminal reports whether w is a terminal that can redraw a line: a
// file that answers the terminal ioctl, and not TERM=dumb (Emacs' shell,
// some CI logs), which does not understand ESC [ K.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
