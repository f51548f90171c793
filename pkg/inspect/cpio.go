package inspect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// cpioReader reads the cpio archive of an rpm payload as a stream. It
// replaces go-rpmutils' reader, which allocates whatever sizes an entry
// declares (a name or a directory entry of 4 GiB) before it reads them:
// here a name is bounded by maxNameSize, and data are read in pieces, or
// skipped, never held whole.
//
// It reads the "newc" format (magic 070701, or 070702 with checksums)
// that rpm writes, and rpm's stripped format (07070X: only an index into
// the header's file list, used since rpm 4.12 for files of 4 GiB and
// more), where size says how much data entry i has.
type cpioReader struct {
	r    *bufio.Reader
	off  int64 // bytes consumed so far, for the 4-byte alignment
	left int64 // data of the current entry not yet read
	pad  int64 // padding after the current entry's data
	size func(i int) (int64, bool)
}

// cpioEntry is one entry's header. Index is -1 but in stripped archives.
type cpioEntry struct {
	Name  string
	Index int
	Mode  uint32
	Ino   uint32
	Nlink uint32
	Size  int64
}

// The size of a newc header: 6 bytes of magic and 13 fields of 8 hex
// digits. The stripped header is the magic and one field.
const (
	newcHeaderSize     = 110
	strippedHeaderSize = 14
	cpioTrailer        = "TRAILER!!!"
)

// maxNameSize bounds a name in the archive: PATH_MAX, with its NUL.
const maxNameSize = 4096

func newCpioReader(r io.Reader, size func(i int) (int64, bool)) *cpioReader {
	return &cpioReader{r: bufio.NewReaderSize(r, 32<<10), size: size}
}

func (c *cpioReader) readFull(p []byte) error {
	n, err := io.ReadFull(c.r, p)
	c.off += int64(n)
	return err
}

// skip discards n bytes without holding them.
func (c *cpioReader) skip(n int64) error {
	k, err := io.CopyN(io.Discard, c.r, n)
	c.off += k
	return err
}

func (c *cpioReader) align() error {
	if r := c.off % 4; r != 0 {
		return c.skip(4 - r)
	}
	return nil
}

// Next skips what is left of the current entry and reads the next
// header. It returns io.EOF at the trailer.
func (c *cpioReader) Next() (cpioEntry, error) {
	if err := c.skip(c.left + c.pad); err != nil {
		return cpioEntry{}, truncated(err)
	}
	c.left, c.pad = 0, 0
	var hdr [newcHeaderSize]byte
	if err := c.readFull(hdr[:6]); err != nil {
		return cpioEntry{}, truncated(err)
	}
	magic := string(hdr[:6])
	if magic == "07070X" {
		if err := c.readFull(hdr[6:strippedHeaderSize]); err != nil {
			return cpioEntry{}, truncated(err)
		}
		i, err := hexField(hdr[6:14], "index")
		if err != nil {
			return cpioEntry{}, err
		}
		size, ok := c.size(int(i))
		if !ok {
			return cpioEntry{}, fmt.Errorf("%w: stripped cpio entry %d is not in the header's file list", ErrMalformed, i)
		}
		if err := c.align(); err != nil {
			return cpioEntry{}, truncated(err)
		}
		c.left, c.pad = size, (4-size%4)%4
		return cpioEntry{Index: int(i), Size: size}, nil
	}
	if magic != "070701" && magic != "070702" {
		return cpioEntry{}, fmt.Errorf("%w: no cpio header (070701) at byte %d of the payload, but %q", ErrMalformed, c.off-6, magic)
	}
	if err := c.readFull(hdr[6:]); err != nil {
		return cpioEntry{}, truncated(err)
	}
	var f [13]uint32
	names := [13]string{"inode", "mode", "uid", "gid", "nlink", "mtime", "file size", "devmajor", "devminor", "rdevmajor", "rdevminor", "name size", "check"}
	for i := range f {
		v, err := hexField(hdr[6+8*i:14+8*i], names[i])
		if err != nil {
			return cpioEntry{}, err
		}
		f[i] = v
	}
	nameSize := f[11]
	if nameSize == 0 || nameSize > maxNameSize {
		return cpioEntry{}, fmt.Errorf("%w: a cpio entry at byte %d claims a name of %d bytes (at most %d)", ErrMalformed, c.off-newcHeaderSize, nameSize, maxNameSize)
	}
	name := make([]byte, nameSize)
	if err := c.readFull(name); err != nil {
		return cpioEntry{}, truncated(err)
	}
	if name[nameSize-1] != 0 {
		return cpioEntry{}, fmt.Errorf("%w: a cpio name at byte %d is not NUL-terminated", ErrMalformed, c.off-int64(nameSize))
	}
	if err := c.align(); err != nil {
		return cpioEntry{}, truncated(err)
	}
	e := cpioEntry{Name: string(name[:nameSize-1]), Index: -1, Mode: f[1], Ino: f[0], Nlink: f[4], Size: int64(f[6])}
	if e.Name == cpioTrailer {
		return e, io.EOF
	}
	c.left, c.pad = e.Size, (4-e.Size%4)%4
	return e, nil
}

// Read reads the current entry's data.
func (c *cpioReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.off += int64(n)
	c.left -= int64(n)
	if err == io.EOF && c.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func hexField(b []byte, what string) (uint32, error) {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: cpio %s field %q is not 8 hex digits", ErrMalformed, what, b)
	}
	return uint32(v), nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the payload's cpio archive ends before its trailer", ErrMalformed)
	}
	return err
}
