package e2e

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	lc "github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// eraseGuardLog is the erase guard's log in a root.
func eraseGuardLog(r *sandbox.Root) string {
	return r.Path(lc.DefaultTxDir + "/" + lc.EraseGuardLog)
}

// waitEraseGuards waits until no erase guard started in r is running: each
// holds a shared flock on its log for its whole life, so an exclusive one
// is granted once none is. It fails the test after a minute, and returns
// the log.
func waitEraseGuards(t *testing.T, r *sandbox.Root) string {
	t.Helper()
	f, err := os.Open(eraseGuardLog(r))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting for the erase guards: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("an erase guard still runs a minute after the transaction")
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	b, _ := os.ReadFile(eraseGuardLog(r))
	return "\n--- erase guard log:\n" + string(b)
}
