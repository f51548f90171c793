package binfmt

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// writeFile writes data to an existing file of binfmt_misc in a single
// write(2). The kernel parses whatever one write delivers, so a split
// write would register a truncated entry or fail; and O_CREAT is never
// used, because binfmt_misc files are only ever created by the kernel.
func writeFile(path string, data []byte) error {
	fd, err := openWrite(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return writeOnce(fd, data)
}

func openWrite(path string) (int, error) {
	return unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
}

func writeOnce(fd int, data []byte) error {
	n, err := unix.Write(fd, data)
	if err != nil {
		return err
	}
	if n != len(data) {
		return errorf("short write: %d of %d bytes", n, len(data))
	}
	return nil
}

// Register registers e with one write to the register file. An existing
// entry of the same name gives an error wrapping ErrExists.
func (f *FS) Register(e Entry) error {
	return f.RegisterString(e.Name, e.RegisterString())
}

// RegisterString writes the register string s, which defines the entry
// called name, as it is. Use it to write a configuration line verbatim,
// as systemd-binfmt does.
func (f *FS) RegisterString(name, s string) error {
	return f.registerOn(-1, name, []byte(s))
}

// registerOn is RegisterString writing s to fd, an open register file,
// or opening the register file itself when fd is -1. Each write(2) to the
// register file is parsed as one entry, so Apply opens it once for all
// its lines, and copies each line into one reused buffer.
func (f *FS) registerOn(fd int, name string, s []byte) error {
	if err := ValidName(name); err != nil {
		return errorf("registering %q: %w", name, err)
	}
	if len(s) > MaxRegisterLength {
		return errorf("registering %q: %w: register string is %d bytes, the kernel accepts at most %d", name, ErrInvalid, len(s), MaxRegisterLength)
	}
	var err error
	if fd < 0 {
		err = writeFile(f.registerPath(), s)
	} else {
		err = writeOnce(fd, s)
	}
	if errors.Is(err, unix.ENOENT) {
		if ok, _ := Mounted(f.Dir); ok {
			// The register file exists, so ENOENT comes from flag F
			// opening the interpreter at registration.
			return errorf("registering %q: %w: its interpreter does not exist (flag F opens it when registering)", name, ErrInvalid)
		}
	}
	return f.explain(err, "registering %q", name)
}

func (f *FS) registerPath() string { return joinPath(f.Dir, "register") }

// Unregister removes the entry called name, and only it, by writing -1
// to its own file. It never writes to the status file, which would remove
// every entry of every tool.
func (f *FS) Unregister(name string) error {
	if err := ValidName(name); err != nil {
		return errorf("unregistering %q: %w", name, err)
	}
	err := writeFile(joinPath(f.Dir, name), []byte("-1"))
	return f.explain(err, "unregistering %q", name)
}

// Replace registers e, first unregistering a live entry of the same name.
// Only callers that have decided the live entry may go should call it.
func (f *FS) Replace(e Entry) error {
	if err := f.Unregister(e.Name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return f.Register(e)
}

// Enable enables the entry called name.
func (f *FS) Enable(name string) error { return f.setEnabled(name, "1") }

// Disable disables the entry called name; it stays registered.
func (f *FS) Disable(name string) error { return f.setEnabled(name, "0") }

func (f *FS) setEnabled(name, v string) error {
	action := map[string]string{"1": "enabling", "0": "disabling"}[v]
	if err := ValidName(name); err != nil {
		return errorf("%s %q: %w", action, name, err)
	}
	err := writeFile(joinPath(f.Dir, name), []byte(v))
	return f.explain(err, "%s %q", action, name)
}

// explain turns an errno into a sentinel error, telling "binfmt_misc went
// away" apart from "no such entry", which both come back as ENOENT. The
// message is only formatted for an error: this runs once per entry.
func (f *FS) explain(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	action := fmt.Sprintf(format, args...)
	if errors.Is(err, unix.ENOENT) {
		if ok, _ := Mounted(f.Dir); !ok {
			return errorf("%s: %w", action, ErrNotMounted)
		}
	}
	return kernelError(action, err)
}
