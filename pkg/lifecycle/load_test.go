package lifecycle_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// loadEntries is how many entries each round applies and removes.
const loadEntries = 40

// TestLoad applies and removes 40 entries round after round in a private
// binfmt_misc, each time through the hook's Converge (and every other
// round applies them twice, which re-registers each), while goroutines
// call Manager.Status and a loop runs "binfmtctl status --json" as a
// separate program. It passes when no entry leaks, no name is reported
// twice, the record matches the kernel after every step, and the heap,
// open files and goroutines stay flat.
//
// LOAD_ROUNDS sets the number of rounds (default 50, "make load" uses
// 1000). Memory is compared between the round at a tenth of the run and
// the last.
func TestLoad(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	rounds := 50
	if s := os.Getenv("LOAD_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			t.Fatalf("LOAD_ROUNDS=%q: want a number of 10 or more", s)
		}
		rounds = n
	}
	helper := buildHelper(t)

	confs := map[string]string{}
	var lines []string
	for i := 0; i < loadEntries; i++ {
		var l string
		switch i % 4 {
		case 0:
			l = fmt.Sprintf(":load-%02d:M::\\x7fLD%02d::/bin/true:F", i, i)
		case 1:
			l = fmt.Sprintf(":load-%02d:M:2:LD%02d:\\xff\\xdf\\xff\\xff:/bin/true:P", i, i)
		case 2:
			l = fmt.Sprintf(":load-%02d:E::ld%02d::/bin/true:", i, i)
		default:
			l = fmt.Sprintf("|load-%02d|M|7|LD%02d||/bin/true|PF", i, i)
		}
		lines = append(lines, l)
		confs[fmt.Sprintf("load-%02d.conf", i/8)] += l + "\n"
	}
	m, files := manager(t, ns, confs)
	root := m.Config.Root
	applied := entries(t, lines...)

	// Someone else's entries, one disabled, which must never change.
	for _, s := range []string{":other-a:M::\\x7fLD00::/bin/true:", ":other-b:E::ld01::/bin/true:"} {
		name := s[1 : strings.Index(s[1:], ":")+1]
		if err := os.WriteFile(filepath.Join(ns.BinfmtDir, "register"), []byte(s), 0); err != nil {
			t.Fatal(err)
		}
		if name == "other-b" {
			os.WriteFile(filepath.Join(ns.BinfmtDir, name), []byte("0"), 0)
		}
	}
	others := table(t, ns.BinfmtDir)

	// Readers. pause stops them while memory is measured.
	var pause sync.RWMutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var statusCalls, execCalls, maxSeen atomic.Int64
	errs := make(chan error, 100)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	checkReport := func(r lifecycle.Report) error {
		seen := map[string]bool{}
		n := 0
		for _, e := range r.Entries {
			if seen[e.Name] {
				return fmt.Errorf("status reports %s twice", e.Name)
			}
			seen[e.Name] = true
			if strings.HasPrefix(e.Name, "load-") {
				n++
				if e.Interpreter != "/bin/true" || e.Owner != "pkg-load" && e.Owner != "" {
					return fmt.Errorf("status reports %+v", e)
				}
			}
		}
		if !seen["other-a"] || !seen["other-b"] || n > loadEntries {
			return fmt.Errorf("status reports %d entries of the package, other-a %v, other-b %v", n, seen["other-a"], seen["other-b"])
		}
		if int64(n) > maxSeen.Load() {
			maxSeen.Store(int64(n))
		}
		return nil
	}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pause.RLock()
				r, err := m.Status()
				pause.RUnlock()
				statusCalls.Add(1)
				if err == nil {
					err = checkReport(r)
				}
				if err != nil {
					report(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pause.RLock()
			out, err := exec.Command(helper, "--binfmt-dir", ns.BinfmtDir, "--root", root, "--state-dir", m.Store.Dir, "status", "--json").Output()
			pause.RUnlock()
			execCalls.Add(1)
			var r lifecycle.Report
			if err == nil {
				err = json.Unmarshal(out, &r)
			}
			if err == nil {
				err = checkReport(r)
			}
			if err != nil {
				report(fmt.Errorf("binfmtctl status --json: %v\n%s", err, out))
			}
		}
	}()

	type sample struct {
		round                       int
		heapAlloc, heapInuse, rssKB uint64
		fds, goroutines             int
	}
	measure := func(round int) sample {
		pause.Lock()
		defer pause.Unlock()
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fds, _ := os.ReadDir("/proc/self/fd")
		return sample{round, ms.HeapAlloc, ms.HeapInuse, vmRSS(), len(fds), runtime.NumGoroutine()}
	}

	checkAt := max(rounds/10, 1)
	var first, last sample
	start := time.Now()
	for round := 1; round <= rounds; round++ {
		step := fmt.Sprintf("round %d", round)
		if err := m.Converge("pkg-load", files, true); err != nil {
			t.Fatalf("%s: applying: %v", step, err)
		}
		if round%2 == 0 {
			// Again, as an upgrade's %post does: each entry is
			// registered once more.
			if err := m.Converge("pkg-load", files, true); err != nil {
				t.Fatalf("%s: applying again: %v", step, err)
			}
		}
		checkTable(t, step+" applied", ns.BinfmtDir, merge(others, applied), "")
		checkRecord(t, step+" applied", m.Store.Dir, "pkg-load", applied)
		if err := m.Apply(lifecycle.Change{Package: "pkg-load", Gone: files, Adopt: true}); err != nil {
			t.Fatalf("%s: removing: %v", step, err)
		}
		checkTable(t, step+" removed", ns.BinfmtDir, others, "")
		checkRecord(t, step+" removed", m.Store.Dir, "pkg-load", nil)
		select {
		case err := <-errs:
			t.Fatalf("%s: %v", step, err)
		default:
		}
		switch round {
		case checkAt:
			first = measure(round)
		case rounds:
			last = measure(round)
		}
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	t.Logf("%d rounds of %d entries (%d kernel writes) in %v, %.1f ms a round", rounds, loadEntries,
		rounds*loadEntries*2+rounds/2*loadEntries*2, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/1000/float64(rounds))
	t.Logf("concurrent readers: %d Manager.Status calls, %d binfmtctl status --json runs; at most %d of the package's entries seen at once",
		statusCalls.Load(), execCalls.Load(), maxSeen.Load())
	for _, s := range []sample{first, last} {
		t.Logf("round %4d: heap live %7.1f KiB, heap in use %7.1f KiB, RSS %6d KiB, %d open files, %d goroutines",
			s.round, float64(s.heapAlloc)/1024, float64(s.heapInuse)/1024, s.rssKB, s.fds, s.goroutines)
	}
	if statusCalls.Load() == 0 || execCalls.Load() == 0 {
		t.Errorf("the readers did not run")
	}
	// A leak of one record's claims a round (40 entries, several KiB)
	// would pass this within a few dozen rounds.
	if grow := int64(last.heapAlloc) - int64(first.heapAlloc); grow > 256<<10 {
		t.Errorf("the live heap grew by %d KiB between round %d and round %d", grow>>10, first.round, last.round)
	}
	if last.fds > first.fds || last.goroutines > first.goroutines {
		t.Errorf("open files %d -> %d, goroutines %d -> %d: something leaks", first.fds, last.fds, first.goroutines, last.goroutines)
	}
	if _, err := os.Stat(m.Store.Dir); !os.IsNotExist(err) {
		t.Errorf("the state directory is left behind: %v", err)
	}
}

// vmRSS returns the resident set size of this process in KiB.
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
