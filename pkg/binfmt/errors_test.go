package binfmt

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelErrorSaysItOnce checks that an errno kernelError translates
// is said once, by its sentinel: not "no such entry (no such file or
// directory)" or "…user namespace) (operation not permitted)". An errno
// without a sentinel is kept as it is.
func TestKernelErrorSaysItOnce(t *testing.T) {
	const action = `registering "x"`
	for _, tt := range []struct {
		err      error
		sentinel error
		want     string
	}{
		{unix.EEXIST, ErrExists, action + ": " + ErrExists.Error()},
		{unix.EACCES, ErrPermission, action + ": " + ErrPermission.Error()},
		{unix.EPERM, ErrPermission, action + ": " + ErrPermission.Error()},
		{unix.EROFS, ErrReadOnly, action + ": " + ErrReadOnly.Error()},
		{unix.ENOENT, ErrNotFound, action + ": " + ErrNotFound.Error()},
		{fs.ErrNotExist, ErrNotFound, action + ": " + ErrNotFound.Error()},
		{unix.EINVAL, ErrInvalid, action + ": " + ErrInvalid.Error()},
		{&os.PathError{Op: "write", Path: "/b/register", Err: unix.EINVAL}, ErrInvalid, action + ": " + ErrInvalid.Error()},
		{unix.EBUSY, unix.EBUSY, action + ": device or resource busy"},
	} {
		got := kernelError(action, tt.err)
		if !errors.Is(got, tt.sentinel) {
			t.Errorf("kernelError(%v) = %v, want it to wrap %v", tt.err, got, tt.sentinel)
		}
		if got.Error() != tt.want {
			t.Errorf("kernelError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
