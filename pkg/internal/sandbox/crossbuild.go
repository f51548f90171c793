package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// CrossBuild compiles the Go program src (the text of a main package that
// imports only the standard library) into a static linux/goarch binary and
// returns its path. goarch is a GOARCH value: arm64, riscv64, s390x,
// ppc64le, and so on.
//
// Binaries are cached by architecture, program text and Go version under
// the user's cache directory, so only the first test that asks pays for the
// build (tens of seconds the first time a standard library is built for an
// architecture, then well under a second from the Go build cache). Callers
// must not change the returned file.
func CrossBuild(t testing.TB, goarch, src string) string {
	t.Helper()
	h := sha256.Sum256([]byte(runtime.Version() + "\x00" + goarch + "\x00" + src))
	cache := crossCacheDir(t)
	out := filepath.Join(cache, goarch+"-"+hex.EncodeToString(h[:12]))
	if _, err := os.Stat(out); err == nil {
		return out
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		// go test puts $GOROOT/bin first in PATH, so this only happens
		// when the test binary runs on its own.
		t.Fatalf("missing the go command to cross-build a test program: put it in PATH (%v)", err)
	}
	work, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		t.Fatalf("creating a build directory: %v", err)
	}
	defer os.RemoveAll(work)
	files := map[string]string{
		"go.mod":  "module sandboxprog\n\ngo 1.21\n",
		"main.go": src,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o644); err != nil {
			t.Fatalf("writing the test program: %v", err)
		}
	}
	bin := filepath.Join(work, "prog")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch,
		// The program stands alone: no workspace, no flags from the
		// caller's environment, no toolchain download.
		"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local",
	)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cross-building a test program for GOARCH=%s: %v\n%s", goarch, err, b)
	}
	// Rename is atomic, so a test binary of another package that builds
	// the same program at the same time sees either nothing or a whole
	// file.
	if err := os.Rename(bin, out); err != nil {
		t.Fatalf("storing the cross-built program: %v", err)
	}
	return out
}

// crossCacheDir returns the directory that holds cross-built programs.
func crossCacheDir(t testing.TB) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "qemu-user-static-go", "sandbox-bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("creating the cross-build cache: %v", err)
	}
	return dir
}

// HelloSource is a program that prints msg and a newline to standard
// output and exits 0.
func HelloSource(msg string) string {
	return fmt.Sprintf(`package main

import "os"

func main() {
	os.Stdout.WriteString(%s + "\n")
}
`, strconv.Quote(msg))
}

// SleeperSource is a program that prints msg and a newline, then sleeps
// for the given number of seconds and exits 0. Tests use it to hold an
// interpreter busy while they change the binfmt_misc table.
func SleeperSource(msg string, seconds int) string {
	return fmt.Sprintf(`package main

import (
	"os"
	"time"
)

func main() {
	os.Stdout.WriteString(%s + "\n")
	time.Sleep(%d * time.Second)
}
`, strconv.Quote(msg), seconds)
}
