package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"
)

func newcHeader(name string, mode, size uint32) []byte {
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	b := append([]byte(h), name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// FuzzCpio reads any bytes as a payload's cpio archive: it may fail,
// never panic, never take a name over maxNameSize, never read data past
// the input or past what an entry declares.
func FuzzCpio(f *testing.F) {
	data := append(newcHeader("/usr/lib/binfmt.d/a.conf", 0o100644, 5), "hello\x00\x00\x00"...)
	data = append(data, newcHeader("/usr/share/d", 0o40755, 0)...)
	data = append(data, newcHeader(cpioTrailer, 0, 0)...)
	f.Add(data)
	f.Add([]byte("07070X00000000\x00\x00hello"))
	f.Add(newcHeader("x", 0o40755, 0xffffffff))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newCpioReader(bytes.NewReader(data), func(i int) (int64, bool) { return int64(i % 7), i < 3 })
		total := 0
		buf := make([]byte, 512)
		for range 1000 {
			e, err := c.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("Next: %v, want io.EOF or ErrMalformed", err)
				}
				return
			}
			if len(e.Name) >= maxNameSize {
				t.Fatalf("a name of %d bytes", len(e.Name))
			}
			n := 0
			for {
				k, err := c.Read(buf)
				n += k
				if err != nil {
					break
				}
			}
			if int64(n) > e.Size {
				t.Fatalf("read %d bytes of an entry of %d", n, e.Size)
			}
			total += n
		}
		if total > len(data) {
			t.Fatalf("read %d bytes of data from %d bytes of input", total, len(data))
		}
	})
}

// FuzzResolveLinks resolves a path through links given as lines
// "path\\ttarget": it ends, and gives "" or an absolute clean path.
func FuzzResolveLinks(f *testing.F) {
	f.Add("/usr/lib/binfmt.d/a.conf", "/usr/lib/binfmt.d/a.conf\t../../share/a.conf\n/usr/share\t/opt/s")
	f.Add("/a", "/a\t/a")
	f.Add("/a/b", "/a\t.\n/a/b\t../a/b")
	f.Fuzz(func(t *testing.T, name, links string) {
		m := map[string]string{}
		for _, l := range strings.Split(links, "\n") {
			if p, target, ok := strings.Cut(l, "\t"); ok {
				m[path.Clean("/"+p)] = target
			}
		}
		got := resolveLinks(name, func(p string) (string, bool) { t, ok := m[p]; return t, ok })
		if got != "" && (got != path.Clean(got) || !strings.HasPrefix(got, "/")) {
			t.Fatalf("resolveLinks(%q) = %q, not absolute and clean", name, got)
		}
	})
}
