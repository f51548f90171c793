package binfmt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// loadWithin looks name up and loads it, failing the test when that
// takes longer than d: a read that blocks would otherwise hang the test
// as it hung register, hook post and status (issue 16 point 9).
func loadWithin(t *testing.T, c binfmt.Config, name string, d time.Duration) ([]binfmt.Line, []error) {
	t.Helper()
	type result struct {
		lines []binfmt.Line
		errs  []error
	}
	done := make(chan result, 1)
	go func() {
		f, err := c.Resolve(name)
		if err != nil {
			done <- result{nil, []error{err}}
			return
		}
		l, errs := c.Load(f)
		done <- result{l, errs}
	}()
	select {
	case r := <-done:
		return r.lines, r.errs
	case <-time.After(d):
		// The goroutine stays blocked in open; the test binary exits
		// with the failure all the same.
		t.Fatalf("loading %s did not return within %v", name, d)
		return nil, nil
	}
}

// TestConfigFIFO: a binfmt.d name that is, or resolves to, a FIFO is
// refused at once by its type, naming the file, and the files beside it
// still load. Config.Load is what register, the hooks and status read
// binfmt.d files with.
func TestConfigFIFO(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/etc/binfmt.d/good.conf": ":good:E::g::/bin/sh:\n",
		"/etc/binfmt.d/link.conf": "->../../srv/fifo",
	})
	for _, p := range []string{"/etc/binfmt.d/fifo.conf", "/srv/fifo"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(root, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := binfmt.Config{Root: root}
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("Files = %+v, want fifo.conf, good.conf and link.conf", files)
	}
	for _, name := range []string{"fifo.conf", "link.conf", "/etc/binfmt.d/fifo.conf"} {
		lines, errs := loadWithin(t, c, name, 5*time.Second)
		path := name
		if !strings.HasPrefix(name, "/") {
			path = "/etc/binfmt.d/" + name
		}
		if len(lines) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), fmt.Sprintf("%q", path)) ||
			!strings.Contains(errs[0].Error(), "a FIFO, not a regular file") || strings.Contains(errs[0].Error(), root) {
			t.Errorf("loading %s: %+v, %v; want one error naming %s as a FIFO", name, lines, errs, path)
		}
	}
	if lines, errs := loadWithin(t, c, "good.conf", 5*time.Second); len(errs) != 0 || len(lines) != 1 {
		t.Errorf("loading good.conf beside the FIFOs: %+v, %v", lines, errs)
	}
	// ParseFile, without a root, is the same read.
	_, errs := binfmt.ParseFile(filepath.Join(root, "srv/fifo"))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "a FIFO") {
		t.Errorf("ParseFile of a FIFO: %v", errs)
	}
}

// TestConfigSizeCap: a binfmt.d file over MaxConfigSize is refused from
// its size, without being read (issue 16 point 12: a 300 MB file cost
// about 1 GB in register and in status, which any user runs), and the
// error names it. A file of exactly the limit is read.
func TestConfigSizeCap(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"/usr/lib/binfmt.d/ok.conf": ""})
	// Sparse: 300 MB that take no disk.
	big := filepath.Join(root, "/etc/binfmt.d/big.conf")
	writeFile(t, big, ":big:E::b::/bin/sh:\n")
	if err := os.Truncate(big, 300<<20); err != nil {
		t.Fatal(err)
	}
	// A file of exactly MaxConfigSize: one line, then comment lines.
	line := ":ok:E::o::/bin/sh:\n"
	pad := strings.Repeat("#"+strings.Repeat("x", 62)+"\n", (binfmt.MaxConfigSize-len(line))/64)
	text := line + pad + strings.Repeat("#", binfmt.MaxConfigSize-len(line)-len(pad)-1) + "\n"
	if len(text) != binfmt.MaxConfigSize {
		t.Fatalf("built %d bytes, want %d", len(text), binfmt.MaxConfigSize)
	}
	writeFile(t, filepath.Join(root, "/usr/lib/binfmt.d/ok.conf"), text)

	c := binfmt.Config{Root: root}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lines, errs := loadWithin(t, c, "big.conf", 5*time.Second)
	runtime.ReadMemStats(&after)
	if len(lines) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), `"/etc/binfmt.d/big.conf"`) ||
		!strings.Contains(errs[0].Error(), fmt.Sprintf("%d bytes, over the limit of %d", 300<<20, binfmt.MaxConfigSize)) {
		t.Errorf("loading a 300 MB file: %d lines, %v; want one error naming it and its size", len(lines), errs)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing a 300 MB file allocated %d bytes; it must not be read", got)
	}
	if lines, errs := loadWithin(t, c, "ok.conf", 5*time.Second); len(errs) != 0 || len(lines) != 1 {
		t.Errorf("loading a file of exactly %d bytes: %d lines, %v", binfmt.MaxConfigSize, len(lines), errs)
	}
}
