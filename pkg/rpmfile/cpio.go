package rpmfile

import (
	"fmt"
	"io"
)

// cpioWriter writes the "newc" (SVR4, magic 070701) archive rpm uses for
// payloads. It counts what it wrote: the signature header records the
// archive's size.
type cpioWriter struct {
	w io.Writer
	n int64
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// header writes one entry's header and name; the caller then writes
// exactly size bytes of content and calls pad.
func (c *cpioWriter) header(name string, ino, mode, nlink, mtime uint32, size int64) error {
	if size > 0xffffffff {
		// newc has 8 hex digits for the size; rpm switches to another
		// format for such files, which nothing here needs.
		return fmt.Errorf("writing cpio entry %q: %d bytes is too large for the newc format", name, size)
	}
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, len(name)+1, 0)
	if err := c.write([]byte(h + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

// close writes the trailer entry. rpm and cpio stop at it.
func (c *cpioWriter) close() error {
	if err := c.header("TRAILER!!!", 0, 0, 1, 0, 0); err != nil {
		return err
	}
	return c.pad()
}
