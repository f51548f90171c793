package inspect

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	rpmutils "github.com/sassoftware/go-rpmutils"
)

// TestStrippedPayload reads the stripped cpio payload rpm 6.1 wrote
// (testdata/v6/v6.rpm) with cpioReader: each file's content in full, then
// the trailer.
func TestStrippedPayload(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "v6", "v6.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	at, err := checkStructure(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := rpmutils.ReadRpm(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	files, err := pkg.Header.GetFiles()
	if err != nil {
		t.Fatal(err)
	}
	comp, _ := pkg.Header.GetString(rpmutils.PAYLOADCOMPRESSOR)
	d, closeD, err := decompress(bytes.NewReader(data[at:]), comp, true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeD()
	c := newCpioReader(d, func(i int) (int64, bool) {
		if i < 0 || i >= len(files) {
			return 0, false
		}
		return files[i].Size(), true
	})
	got := map[string]string{}
	for {
		e, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Index < 0 {
			t.Fatalf("an ordinary cpio entry %q in a v6 payload", e.Name)
		}
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		got[files[e.Index].Name()] = string(b)
	}
	if got["/usr/bin/qemu-s390x-static"] != "\x7fELF stand-in" || len(got["/usr/lib/binfmt.d/qemu-s390x-static.conf"]) != 263 || len(got) != 2 {
		t.Errorf("contents %q", got)
	}
}
