package binfmt

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// Find returns the entry the kernel would use to run the file at path:
// the most recently registered enabled entry whose magic matches at its
// offset (under its mask) or whose extension matches the file name's, as
// fs/binfmt_misc.c's check_file does. It returns an error wrapping
// ErrNotFound when no entry matches or binfmt_misc is disabled.
func (f *FS) Find(path string) (Live, error) {
	head, err := readHead(path)
	if err != nil {
		return Live{}, err
	}
	on, err := f.Status()
	if err != nil {
		return Live{}, err
	}
	if !on {
		return Live{}, errorf("finding the handler of %q: %w: binfmt_misc is disabled", path, ErrNotFound)
	}
	entries, err := f.Entries()
	if err != nil {
		return Live{}, err
	}
	for _, e := range entries {
		if e.Enabled && e.Handles(path, head) {
			return e, nil
		}
	}
	return Live{}, errorf("finding the handler of %q: %w: no enabled entry matches", path, ErrNotFound)
}

// readHead reads what the kernel looks at: the first 256 bytes, padded
// with zeros past the end of a short file, as prepare_binprm does.
func readHead(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, errorf("finding the handler of %q: %w", path, err)
	}
	defer fh.Close()
	buf := make([]byte, bufSize)
	if _, err := io.ReadFull(fh, buf); err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, errorf("reading %q: %w", path, err)
	}
	return buf, nil
}

// Handles reports whether e matches a file called path whose first bytes
// are head.
func (e Entry) Handles(path string, head []byte) bool {
	if e.Type == TypeExtension {
		// The kernel takes what follows the last '.' of the path as given.
		i := strings.LastIndexByte(path, '.')
		return i >= 0 && path[i+1:] == string(e.Magic)
	}
	end := e.Offset + len(e.Magic)
	if end > len(head) {
		return false
	}
	got := head[e.Offset:end]
	if e.Mask == nil {
		return bytes.Equal(got, e.Magic)
	}
	for i := range e.Magic {
		if (got[i]^e.Magic[i])&e.Mask[i] != 0 {
			return false
		}
	}
	return true
}
