package binfmt

import (
	"errors"
	"fmt"
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

// MaxConfigSize bounds what is read of one binfmt.d file. Real ones are
// a few hundred bytes and the kernel takes at most 1920 per entry, while
// binfmtctl status, which any user runs, reads every file the
// administrator's directories name: a bigger one is refused, not read.
// inspect applies the same bound to a package's binfmt.d files.
const MaxConfigSize = 1 << 20

// readConfigInto reads the binfmt.d file at path into buf, refusing
// anything but a regular file of at most MaxConfigSize bytes. It opens
// with O_NONBLOCK, so that a FIFO (which open would otherwise wait on
// for a writer, forever) or a device is refused by its type, taken with
// fstat from the open file, before anything is read. O_NONBLOCK does not
// change reads from a regular file. The caller names the file in errors.
func readConfigInto(path, shown string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: shown, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: shown, Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG {
		return nil, errorf("it is %s, not a regular file", fileType(t))
	}
	if st.Size > MaxConfigSize {
		return nil, errorf("it is %d bytes, over the limit of %d for a binfmt.d file", st.Size, MaxConfigSize)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		// One byte more than the limit may come in, to tell a file that
		// grew since fstat.
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), MaxConfigSize+1)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: shown, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if len(buf) > MaxConfigSize {
			return nil, errorf("it grew over the limit of %d bytes for a binfmt.d file while being read", MaxConfigSize)
		}
	}
}

// fileType names a file type from the S_IFMT bits, for errors.
func fileType(t uint32) string {
	switch t {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("of type %#o", t)
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
