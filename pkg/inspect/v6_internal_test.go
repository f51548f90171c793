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

// v6Payload returns the file list and the decompressed payload (rpm's
// stripped cpio) of the kept v6 package testdata/v6/v6.rpm.
func v6Payload(tb testing.TB) ([]rpmutils.FileInfo, []byte) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "v6", "v6.rpm"))
	if err != nil {
		tb.Fatal(err)
	}
	at, err := checkStructure(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatal(err)
	}
	pkg, err := rpmutils.ReadRpm(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	files, err := pkg.Header.GetFiles()
	if err != nil {
		tb.Fatal(err)
	}
	comp, _ := pkg.Header.GetString(rpmutils.PAYLOADCOMPRESSOR)
	d, closeD, err := decompress(bytes.NewReader(data[at:]), comp)
	if err != nil {
		tb.Fatal(err)
	}
	defer closeD()
	cpio, err := io.ReadAll(d)
	if err != nil {
		tb.Fatal(err)
	}
	return files, cpio
}

// readAll walks a stripped payload to its end and returns the contents
// by file name.
func readAll(files []rpmutils.FileInfo, cpio []byte) (map[string]string, error) {
	p := newStrippedPayload(bytes.NewReader(cpio), files)
	out := map[string]string{}
	for {
		fi, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return out, err
		}
		out[fi.Name()] = string(b)
	}
}

// TestStrippedPayload reads rpm 6.1's stripped cpio: each file's
// content, in full, then the trailer; and refuses a cut or altered one.
func TestStrippedPayload(t *testing.T) {
	files, cpio := v6Payload(t)
	got, err := readAll(files, cpio)
	if err != nil {
		t.Fatal(err)
	}
	if got["/usr/bin/qemu-s390x-static"] != "\x7fELF stand-in" || len(got["/usr/lib/binfmt.d/qemu-s390x-static.conf"]) != 263 {
		t.Errorf("contents %q", got)
	}
	if !bytes.HasPrefix(cpio, []byte("07070X00000000")) {
		t.Fatalf("the payload does not start with a stripped entry for file 0: %q", cpio[:16])
	}
	for _, c := range []struct {
		name string
		cpio []byte
	}{
		{"cut in the second entry", cpio[:40]},
		{"no trailer", cpio[:bytes.Index(cpio, []byte("070701"))]},
		{"file index past the list", append([]byte("07070X000000ff"), cpio[14:]...)},
		{"bad magic", append([]byte("07070Y"), cpio[6:]...)},
	} {
		if _, err := readAll(files, c.cpio); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// FuzzStrippedPayload feeds arbitrary payloads to the stripped cpio
// reader with the v6 package's file list: it ends, with an error or
// not, and never panics.
func FuzzStrippedPayload(f *testing.F) {
	files, cpio := v6Payload(f)
	f.Add(cpio)
	f.Add(cpio[:40])
	f.Add([]byte("07070X"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readAll(files, data)
	})
}
