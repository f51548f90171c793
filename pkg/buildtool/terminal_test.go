package buildtool_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
)

// openPTY opens a new pseudo-terminal pair, as openpty(3) does: the
// multiplexer, unlocked, and the terminal it made.
func openPTY(t *testing.T) (master, term *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx (a pseudo-terminal for the test; mount devpts on /dev/pts): %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("numbering the pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the pseudo-terminal: %v", err)
	}
	return m, s
}

// TestProgressOnTerminal runs build with standard error on a real
// pseudo-terminal: the progress is one line redrawn in place, which ends
// with the total, and the lines around it are as on a pipe.
func TestProgressOnTerminal(t *testing.T) {
	for _, cpu := range []string{"s390x", "riscv64"} {
		if _, err := os.Stat("/usr/bin/qemu-" + cpu + "-static"); err != nil {
			t.Fatalf("missing /usr/bin/qemu-%s-static: install with `apt-get install -y qemu-user-static`", cpu)
		}
	}
	bin, src, err := helper(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TERM", "xterm")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	master, term := openPTY(t)
	defer master.Close()
	var screen bytes.Buffer
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, master)
		read <- err
	}()
	out := t.TempDir()
	var stdout bytes.Buffer
	code := buildtool.Run([]string{"build", "--cpus", "riscv64,s390x", "--output", out, "--compression", "fast", "--binfmtctl", bin, "--source-dir", src}, &stdout, term)
	term.Close()
	// Reading the multiplexer ends with EIO once its terminal is closed.
	if err := <-read; err != nil && !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("reading the terminal: %v", err)
	}
	if code != 0 {
		t.Fatalf("build exited %d:\n%q", code, screen.String())
	}
	if !strings.HasSuffix(stdout.String(), ".rpm\n") {
		t.Errorf("stdout %q, want the rpm's path", stdout.String())
	}
	// The terminal turns each \n into \r\n.
	s := screen.String()
	for _, want := range []*regexp.Regexp{
		// Every package's payload is one line redrawn, ended by its
		// total; the qemu package's is there.
		regexp.MustCompile(`writing \S+/qemu-user-static-go-0\.1\.0-1\.\w+\.rpm with fast compression\r\n` +
			`(\rcompressing qemu-user-static-go-0\.1\.0-1\.\w+\.rpm: [0-9.]+ [KM]iB of [0-9.]+ MiB \(\d+%\)[^\r\n]*\x1b\[K)+` +
			`\rcompressed [0-9.]+ MiB of files in [^\r\n]+\x1b\[K\r\n`),
		regexp.MustCompile(`\r\nwrote qemu-user-static-go-0\.1\.0-1\.\w+: \d+ bytes, sha256 [0-9a-f]{64}\r\n$`),
		// A carriage return only starts a progress line or ends a line.
		regexp.MustCompile(`^([^\r]|\r\n|\rcompress)*$`),
	} {
		if !want.MatchString(s) {
			t.Errorf("the terminal shows\n%q\nwant it to match\n%s", s, want)
		}
	}
}
