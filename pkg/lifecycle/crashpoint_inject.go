//go:build crashpoint

package lifecycle

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// crashEnv names the crash point at which a binary built with -tags
// crashpoint kills itself with SIGKILL: NAME, or NAME:N to die the Nth
// time the point is reached in this process (N starts at 1). The names
// are those passed to crashPoint in hook.go: before-intent, after-intent,
// after-register, after-unregister, before-final and after-final.
const crashEnv = "BINFMTCTL_CRASH_AT"

var crashHits = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// crashPoint kills the process if crashEnv asks for this point. SIGKILL
// cannot be caught, so no deferred function runs and the lock and file
// descriptors go only because the kernel closes them, as after a real
// crash. A line on stderr names the point, for the test log.
func crashPoint(name string) {
	want := os.Getenv(crashEnv)
	if want == "" {
		return
	}
	at, nth := want, 1
	if i := strings.LastIndexByte(want, ':'); i >= 0 {
		if n, err := strconv.Atoi(want[i+1:]); err == nil && n > 0 {
			at, nth = want[:i], n
		}
	}
	if at != name {
		return
	}
	crashHits.Lock()
	crashHits.n[name]++
	hit := crashHits.n[name]
	crashHits.Unlock()
	if hit != nth {
		return
	}
	fmt.Fprintf(os.Stderr, "binfmtctl: killed at crash point %s:%d\n", name, hit)
	unix.Kill(os.Getpid(), unix.SIGKILL)
	// The signal is delivered on the way out of kill(2); never return.
	for {
		time.Sleep(time.Hour)
	}
}
