package assemble

import (
	"sync"
	"time"
)

// Progress is how far the payload of one package has got: Done of Total
// bytes of its files have gone into the compressor, Elapsed after it
// started. Done reaches Total when the last file is in.
type Progress struct {
	Path        string // the package being written
	Done, Total int64
	Elapsed     time.Duration
}

// progressFunc adapts fn, Options.Progress, to rpmfile's callback for the
// package at path: it stamps the time, and calls fn from one goroutine at a
// time with a Done that never goes back (rpmfile's workers count at once,
// so their reports can arrive out of order). It is nil when fn is.
func progressFunc(fn func(Progress), path string) func(done, total int64) {
	if fn == nil {
		return nil
	}
	var mu sync.Mutex
	var high int64
	start := time.Now()
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done < high {
			return
		}
		high = done
		fn(Progress{Path: path, Done: done, Total: total, Elapsed: time.Since(start)})
	}
}
