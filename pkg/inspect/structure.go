package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotRPM is returned, wrapped, for input that is not an rpm package.
var ErrNotRPM = errors.New("not an rpm package")

// ErrDigest is returned, wrapped, when the header or the payload does not
// match its digest, or a file in the payload its digest in the header.
var ErrDigest = errors.New("digest mismatch")

// ErrMalformed is returned, wrapped, for an rpm whose structure is broken:
// truncated, or with header entries pointing outside their header.
var ErrMalformed = errors.New("malformed rpm")

const (
	leadSize = 96
	// rpm's own limits on a header (lib/header.c in rpm 4.18): at most
	// 65535 entries and 256 MiB of data.
	maxEntries   = 0xffff
	maxDataBytes = 256 << 20
)

// Sizes of the fixed-size header types; strings are NUL terminated.
var typeSizes = map[uint32]int{0: 0, 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1}

// checkStructure reads the lead and both headers from r and checks what
// go-rpmutils takes for granted: the magics, sane counts and sizes, every
// entry's data inside the store, and strings terminated. It returns the
// offset where the payload starts. size is the size of the input: sizes
// claimed beyond it are reported before anything is allocated for them.
//
// go-rpmutils slices its input by the offsets in the header without
// checking them, so a damaged header would make it panic.
func checkStructure(r io.Reader, size int64) (int64, error) {
	lead := make([]byte, leadSize)
	n, err := io.ReadFull(r, lead)
	if n == 0 {
		return 0, fmt.Errorf("%w: the file is empty", ErrNotRPM)
	}
	if n < 4 || binary.BigEndian.Uint32(lead) != 0xedabeedb {
		return 0, fmt.Errorf("%w: no rpm lead magic (ed ab ee db) at the start", ErrNotRPM)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: the lead is truncated (%d of %d bytes)", ErrMalformed, n, leadSize)
	}
	if sigType := binary.BigEndian.Uint16(lead[78:80]); sigType != 5 {
		return 0, fmt.Errorf("%w: signature type %d in the lead; only header-style signatures (5) exist since rpm 3", ErrMalformed, sigType)
	}
	off := int64(leadSize)
	sigSize, err := checkHeader(r, "signature header", true, size-off)
	if err != nil {
		return 0, err
	}
	off += sigSize
	hdrSize, err := checkHeader(r, "header", false, size-off)
	if err != nil {
		return 0, err
	}
	return off + hdrSize, nil
}

// checkHeader checks one header, of which at most left bytes can be
// there, and returns its size on disk, padding included.
func checkHeader(r io.Reader, what string, padded bool, left int64) (int64, error) {
	intro := make([]byte, 16)
	if _, err := io.ReadFull(r, intro); err != nil {
		return 0, fmt.Errorf("%w: the %s is truncated: %v", ErrMalformed, what, err)
	}
	if !bytes.Equal(intro[:3], []byte{0x8e, 0xad, 0xe8}) {
		return 0, fmt.Errorf("%w: no header magic (8e ad e8) at the start of the %s", ErrMalformed, what)
	}
	count := binary.BigEndian.Uint32(intro[8:12])
	dataSize := binary.BigEndian.Uint32(intro[12:16])
	if count == 0 || count > maxEntries {
		return 0, fmt.Errorf("%w: the %s claims %d entries (rpm allows 1 to %d)", ErrMalformed, what, count, maxEntries)
	}
	if dataSize > maxDataBytes {
		return 0, fmt.Errorf("%w: the %s claims %d bytes of data (rpm allows %d)", ErrMalformed, what, dataSize, maxDataBytes)
	}
	stored := int64(dataSize)
	if padded {
		stored = (stored + 7) / 8 * 8
	}
	if need := 16 + 16*int64(count) + stored; need > left {
		return 0, fmt.Errorf("%w: the %s is truncated: it claims %d bytes, %d are left in the file", ErrMalformed, what, need, left)
	}
	index := make([]byte, 16*int(count))
	if _, err := io.ReadFull(r, index); err != nil {
		return 0, fmt.Errorf("%w: the %s index is truncated: %v", ErrMalformed, what, err)
	}
	data := make([]byte, stored)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, fmt.Errorf("%w: the %s data is truncated: %v", ErrMalformed, what, err)
	}
	data = data[:dataSize]
	for i := 0; i < int(count); i++ {
		e := index[16*i:]
		tag := binary.BigEndian.Uint32(e)
		typ := binary.BigEndian.Uint32(e[4:])
		off := binary.BigEndian.Uint32(e[8:])
		cnt := binary.BigEndian.Uint32(e[12:])
		if off > dataSize {
			return 0, fmt.Errorf("%w: %s tag %d points at byte %d of %d", ErrMalformed, what, tag, off, dataSize)
		}
		if typ > 9 {
			return 0, fmt.Errorf("%w: %s tag %d has unknown type %d", ErrMalformed, what, tag, typ)
		}
		if sz, ok := typeSizes[typ]; ok {
			if uint64(off)+uint64(sz)*uint64(cnt) > uint64(dataSize) {
				return 0, fmt.Errorf("%w: %s tag %d runs past the end of its data", ErrMalformed, what, tag)
			}
			continue
		}
		// String types: cnt NUL-terminated strings.
		end := int(off)
		for j := uint32(0); j < cnt; j++ {
			k := bytes.IndexByte(data[end:], 0)
			if k < 0 {
				return 0, fmt.Errorf("%w: %s tag %d has an unterminated string", ErrMalformed, what, tag)
			}
			end += k + 1
		}
	}
	return 16 + int64(len(index)) + stored, nil
}
