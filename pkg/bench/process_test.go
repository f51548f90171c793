package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is what one finished process cost, as wait4(2) reports it: the
// CPU time and peak RSS include the children it waited for (rpmbuild's
// %install shell, rpm's scriptlets under dnf).
type proc struct {
	Wall, CPU time.Duration
	MaxRSS    int64 // bytes
	Out       string
}

// measure runs cmd to the end and returns its cost, failing the test if
// it fails.
func measure(t *testing.T, cmd *exec.Cmd) proc {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	ps := cmd.ProcessState
	p := proc{Wall: wall, CPU: ps.UserTime() + ps.SystemTime(), Out: out.String()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		p.MaxRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	return p
}

// reporting is whether this run writes the report (make bench).
func reporting() bool { return os.Getenv("BENCH_REPORT") != "" }

// full is whether the slow settings run too (BENCH_FULL=1).
func full() bool { return os.Getenv("BENCH_FULL") == "1" }

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// spread formats values as "median (min–max)", or the one value.
func spread(s Sample, format func(time.Duration) string) string {
	if len(s) == 1 {
		return format(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", format(s.Median()), format(s.Min()), format(s.Max()))
}

// shellJoin renders args as a shell command line.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~%!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
