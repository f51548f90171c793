package binfmt

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Every error this package returns for a kernel or
// configuration problem wraps one of them, so callers test with errors.Is
// and users still read the action and the input in the message.
var (
	ErrNotMounted = errors.New("binfmt_misc is not mounted (mount it with: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)")
	ErrExists     = errors.New("an entry of that name is already registered")
	ErrPermission = errors.New("permission denied (binfmt_misc changes need root in the owning user namespace)")
	ErrNotFound   = errors.New("no such entry")
	ErrInvalid    = errors.New("invalid entry")
	ErrReadOnly   = errors.New("binfmt_misc is read-only")
	ErrUnsafe     = errors.New("unsafe interpreter")
)

// kernelError translates an errno from a binfmt_misc operation into one of
// the sentinels, in one place, so every caller reports the same hint.
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func kernelError(action string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, unix.EEXIST):
		sentinel = ErrExists
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		sentinel = ErrPermission
	case errors.Is(err, unix.EROFS):
		sentinel = ErrReadOnly
	case errors.Is(err, unix.ENOENT), errors.Is(err, fs.ErrNotExist):
		sentinel = ErrNotFound
	case errors.Is(err, unix.EINVAL):
		sentinel = ErrInvalid
	default:
		return errorf("%s: %w", action, err)
	}
	// The sentinel says what the errno says, with the hint besides: adding
	// the errno too would say it twice ("no such entry (no such file or
	// directory)", "...user namespace) (operation not permitted)").
	return errorf("%s: %w", action, sentinel)
}
