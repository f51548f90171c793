package rpmfile

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
)

// rawTag is one entry of a header as stored: its type and its values.
type rawTag struct {
	typ    uint32
	values []string
}

func (r rawTag) String() string {
	return fmt.Sprintf("type %d %q", r.typ, r.values)
}

// rawHeader reads the main header of an rpm file tag by tag, with no
// library in between, so that two packages compare field by field.
func rawHeader(t *testing.T, p string) map[uint32]rawTag {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	off := 96
	sigIndex, sigStore, _ := headerAt(t, data, off)
	off += 16 + 16*sigIndex + sigStore
	off += (8 - off%8) % 8
	_, _, tags := headerAt(t, data, off)
	return tags
}

func headerAt(t *testing.T, data []byte, off int) (int, int, map[uint32]rawTag) {
	t.Helper()
	if len(data) < off+16 || data[off] != 0x8e || data[off+1] != 0xad || data[off+2] != 0xe8 {
		t.Fatalf("no header magic at %d", off)
	}
	n := int(binary.BigEndian.Uint32(data[off+8:]))
	size := int(binary.BigEndian.Uint32(data[off+12:]))
	index := data[off+16 : off+16+16*n]
	store := data[off+16+16*n : off+16+16*n+size]
	tags := map[uint32]rawTag{}
	for i := 0; i < n; i++ {
		e := index[16*i:]
		tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
		o, count := int(binary.BigEndian.Uint32(e[8:])), int(binary.BigEndian.Uint32(e[12:]))
		var vals []string
		switch typ {
		case typeInt16:
			for j := 0; j < count; j++ {
				vals = append(vals, fmt.Sprint(binary.BigEndian.Uint16(store[o+2*j:])))
			}
		case typeInt32:
			for j := 0; j < count; j++ {
				vals = append(vals, fmt.Sprint(binary.BigEndian.Uint32(store[o+4*j:])))
			}
		case typeString, typeStringArray, 9:
			rest := store[o:]
			for j := 0; j < count; j++ {
				k := strings.IndexByte(string(rest), 0)
				vals = append(vals, string(rest[:k]))
				rest = rest[k+1:]
			}
		case typeBinary:
			vals = append(vals, fmt.Sprintf("%x", store[o:o+count]))
		default:
			vals = append(vals, fmt.Sprintf("type %d count %d", typ, count))
		}
		tags[tag] = rawTag{typ: typ, values: vals}
	}
	return n, size, tags
}

func TestDumpScratch(t *testing.T) {
	p := os.Getenv("DUMP_RPM")
	if p == "" {
		t.Skip("DUMP_RPM not set")
	}
	tags := rawHeader(t, p)
	for tag := uint32(0); tag < 6000; tag++ {
		if v, ok := tags[tag]; ok {
			t.Logf("%d: %s", tag, v)
		}
	}
}
