package binfmt_test

import (
	"path/filepath"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// The benchmarks below measure, in a running process, the work binfmtctl
// register does for every qemu-*.conf of the machine (29 entries on
// Debian 12) before it writes to the kernel. make bench-go runs them
// through benchstat, and compares two trees with BENCH_BASE;
// docs/benchmarks.md has the figures.

// qemuLines parses every /usr/lib/binfmt.d/qemu-*.conf.
func qemuLines(b *testing.B) (files []string, lines []binfmt.Line) {
	b.Helper()
	sandbox.Require(b, "/usr/lib/binfmt.d/qemu-aarch64.conf", "qemu-user-static")
	files, _ = filepath.Glob("/usr/lib/binfmt.d/qemu-*.conf")
	for _, f := range files {
		l, errs := binfmt.ParseFile(f)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		lines = append(lines, l...)
	}
	return files, lines
}

// BenchmarkParseQemuConfs reads and parses every qemu-*.conf.
func BenchmarkParseQemuConfs(b *testing.B) {
	files, lines := qemuLines(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, f := range files {
			l, _ := binfmt.ParseFile(f)
			n += len(l)
		}
		if n != len(lines) {
			b.Fatalf("parsed %d lines, want %d", n, len(lines))
		}
	}
}

// BenchmarkCheckQemuInterpreters checks every qemu entry's interpreter
// the way one register run does: one checker for all of them, so that
// shared directories are looked at once.
func BenchmarkCheckQemuInterpreters(b *testing.B) {
	_, lines := qemuLines(b)
	entries := make([]binfmt.Entry, len(lines))
	for i, l := range lines {
		entries[i] = l.Entry
	}
	b.ReportAllocs()
	for b.Loop() {
		_, errs := binfmt.CheckEach("/", entries)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
