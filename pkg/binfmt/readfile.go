package binfmt

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// readFile reads a small file with plain system calls. os.ReadFile would
// also register each descriptor with the runtime's poller and set it
// non-blocking; binfmtctl reads dozens of binfmt_misc and binfmt.d files
// per run, inside rpm transactions, so the extra system calls show. The
// error is an *fs.PathError, as from os.ReadFile.
func readFile(path string) ([]byte, error) {
	// binfmt.d files and binfmt_misc entries are a few hundred bytes; the
	// buffer grows for bigger ones.
	return readFileInto(path, make([]byte, 0, 512))
}

// readFileInto is readFile reading into buf first, which callers that
// copy the contents out can keep on their stack.
func readFileInto(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readlink is os.Readlink with a first try into a small buffer on the
// stack, big enough for any interpreter link qemu packages ship.
func readlink(path string) (string, error) {
	var buf [256]byte
	n, err := unix.Readlink(path, buf[:])
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
	}
	if n < len(buf) {
		return string(buf[:n]), nil
	}
	return os.Readlink(path)
}
