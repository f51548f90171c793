package rpmfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Header data types (rpm's lib/rpmtag.h, rpmTagType).
const (
	typeInt16       = 3
	typeInt32       = 4
	typeString      = 6
	typeBinary      = 7
	typeStringArray = 8
)

// Region tags: the first index entry of the signature header and of the
// main header, whose data (the last 16 bytes of the store) marks the
// whole header as one immutable region.
const (
	regionSignatures = 62
	regionImmutable  = 63
)

// Header tags (rpm's lib/rpmtag.h). Only the ones this package writes.
const (
	tagI18NTable         = 100
	tagName              = 1000
	tagVersion           = 1001
	tagRelease           = 1002
	tagEpoch             = 1003
	tagSummary           = 1004
	tagDescription       = 1005
	tagBuildTime         = 1006
	tagBuildHost         = 1007
	tagSize              = 1009
	tagVendor            = 1011
	tagLicense           = 1014
	tagPackager          = 1015
	tagGroup             = 1016
	tagURL               = 1020
	tagOS                = 1021
	tagArch              = 1022
	tagPrein             = 1023
	tagPostin            = 1024
	tagPreun             = 1025
	tagPostun            = 1026
	tagChangelogTime     = 1080
	tagChangelogName     = 1081
	tagChangelogText     = 1082
	tagFileSizes         = 1028
	tagFileModes         = 1030
	tagFileRDevs         = 1033
	tagFileMTimes        = 1034
	tagFileDigests       = 1035
	tagFileLinkTos       = 1036
	tagFileFlags         = 1037
	tagFileUserName      = 1039
	tagFileGroupName     = 1040
	tagSourceRPM         = 1044
	tagFileVerifyFlags   = 1045
	tagProvideName       = 1047
	tagRequireFlags      = 1048
	tagRequireName       = 1049
	tagRequireVersion    = 1050
	tagConflictFlags     = 1053
	tagConflictName      = 1054
	tagConflictVersion   = 1055
	tagVerifyScript      = 1079
	tagPreinProg         = 1085
	tagPostinProg        = 1086
	tagPreunProg         = 1087
	tagPostunProg        = 1088
	tagObsoleteName      = 1090
	tagVerifyScriptProg  = 1091
	tagFileDevices       = 1095
	tagFileINodes        = 1096
	tagFileLangs         = 1097
	tagPrefixes          = 1098
	tagProvideFlags      = 1112
	tagProvideVersion    = 1113
	tagObsoleteFlags     = 1114
	tagObsoleteVersion   = 1115
	tagDirIndexes        = 1116
	tagBaseNames         = 1117
	tagDirNames          = 1118
	tagPayloadFormat     = 1124
	tagPayloadCompressor = 1125
	tagPayloadFlags      = 1126
	tagPretrans          = 1151
	tagPosttrans         = 1152
	tagPretransProg      = 1153
	tagPosttransProg     = 1154
	tagFileDigestAlgo    = 5011
	tagRecommendName     = 5046
	tagRecommendVersion  = 5047
	tagRecommendFlags    = 5048
	tagSuggestName       = 5049
	tagSuggestVersion    = 5050
	tagSuggestFlags      = 5051
	tagPayloadDigest     = 5092
	tagPayloadDigestAlgo = 5093
)

// Signature header tags (rpm's lib/rpmtag.h, rpmSigTag).
const (
	sigRSA         = 268  // OpenPGP signature of the header
	sigSHA256      = 273  // hex SHA-256 of the header
	sigSize        = 1000 // header plus compressed payload, in bytes
	sigPGP         = 1002 // OpenPGP signature of header and payload
	sigPayloadSize = 1007 // size of the uncompressed payload (cpio archive)
)

// hashAlgoSHA256 is PGPHASHALGO_SHA256, for the file and payload digests.
const hashAlgoSHA256 = 8

// maxHeaderBytes is rpm's limit on a header's index and data together
// (headerMaxbytes in rpm 4.18's lib/header.c).
const maxHeaderBytes = 256 << 20

type entry struct {
	typ   uint32
	count uint32
	data  []byte
}

// header collects index entries and encodes them the way rpm reads them:
// entries sorted by tag after the region entry, integers aligned to their
// size in the data store, and the region trailer last.
type header struct {
	region  uint32
	entries map[uint32]entry
}

func newHeader(region uint32) *header {
	return &header{region: region, entries: map[uint32]entry{}}
}

func (h *header) addString(tag uint32, s string) {
	h.entries[tag] = entry{typ: typeString, count: 1, data: append([]byte(s), 0)}
}

func (h *header) addStrings(tag uint32, ss []string) {
	var b bytes.Buffer
	for _, s := range ss {
		b.WriteString(s)
		b.WriteByte(0)
	}
	h.entries[tag] = entry{typ: typeStringArray, count: uint32(len(ss)), data: b.Bytes()}
}

func (h *header) addBinary(tag uint32, b []byte) {
	h.entries[tag] = entry{typ: typeBinary, count: uint32(len(b)), data: b}
}

func (h *header) addInt32(tag uint32, vs ...uint32) {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	h.entries[tag] = entry{typ: typeInt32, count: uint32(len(vs)), data: b}
}

func (h *header) addInt16(tag uint32, vs ...uint16) {
	b := make([]byte, 0, 2*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	h.entries[tag] = entry{typ: typeInt16, count: uint32(len(vs)), data: b}
}

// bytes encodes the header: the 16-byte intro, the index, the data store.
func (h *header) bytes() ([]byte, error) {
	tags := make([]uint32, 0, len(h.entries))
	for t := range h.entries {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })

	n := uint32(len(tags) + 1) // the region entry comes first
	var store bytes.Buffer
	offsets := make([]uint32, len(tags))
	for i, t := range tags {
		e := h.entries[t]
		// rpm refuses unaligned integers (and some versions aligned
		// strings), so only integers are padded.
		align := 1
		switch e.typ {
		case typeInt16:
			align = 2
		case typeInt32:
			align = 4
		}
		for store.Len()%align != 0 {
			store.WriteByte(0)
		}
		offsets[i] = uint32(store.Len())
		store.Write(e.data)
	}
	// The region trailer: an index entry whose offset is minus the size
	// of the index, so rpm can tell where the region starts.
	trailerOff := uint32(store.Len())
	trailer := make([]byte, 0, 16)
	trailer = binary.BigEndian.AppendUint32(trailer, h.region)
	trailer = binary.BigEndian.AppendUint32(trailer, typeBinary)
	trailer = binary.BigEndian.AppendUint32(trailer, uint32(-int32(16*n)))
	trailer = binary.BigEndian.AppendUint32(trailer, 16)
	store.Write(trailer)

	if size := 16*int(n) + store.Len(); size > maxHeaderBytes {
		return nil, fmt.Errorf("encoding rpm header: %d bytes is more than rpm accepts (%d)", size, maxHeaderBytes)
	}

	out := make([]byte, 0, 16+16*int(n)+store.Len())
	out = append(out, 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, n)
	out = binary.BigEndian.AppendUint32(out, uint32(store.Len()))
	out = appendIndex(out, h.region, typeBinary, trailerOff, 16)
	for i, t := range tags {
		e := h.entries[t]
		out = appendIndex(out, t, e.typ, offsets[i], e.count)
	}
	return append(out, store.Bytes()...), nil
}

func appendIndex(b []byte, tag, typ, off, count uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, tag)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, off)
	return binary.BigEndian.AppendUint32(b, count)
}

// lead is the 96-byte legacy lead: magic, format 3.0, binary package,
// the name, OS linux and signature type 5 (a header-style signature).
// rpm ignores all of it but the magic and the signature type; the arch
// number is 1 as rpmpack writes it.
func lead(nameVersion string) []byte {
	b := []byte{0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0, 0, 1}
	name := make([]byte, 66)
	// The name field is NUL terminated, so at most 65 bytes of it.
	copy(name[:65], nameVersion)
	b = append(b, name...)
	b = append(b, 0, 1, 0, 5)
	return append(b, make([]byte, 16)...)
}

// relation is one dependency: a name, a version and rpm's sense flags.
type relation struct {
	name, version string
	flags         uint32
}

// rpmsense flags (rpm's include/rpm/rpmds.h).
const (
	senseLess    = 1 << 1
	senseGreater = 1 << 2
	senseEqual   = 1 << 3
)

// parseRelation reads "name", "name >= 1.0" or a rich dependency in
// parentheses, the forms nfpm accepts in its depends, provides and
// conflicts lists.
func parseRelation(s string) (relation, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		return relation{name: s}, nil
	}
	i := strings.IndexAny(s, "<>= \t")
	if i < 0 {
		if s == "" {
			return relation{}, fmt.Errorf("parsing dependency %q: empty name", s)
		}
		return relation{name: s}, nil
	}
	name, rest := s[:i], strings.TrimSpace(s[i:])
	j := strings.IndexFunc(rest, func(r rune) bool { return r != '<' && r != '>' && r != '=' })
	if j < 0 {
		return relation{}, fmt.Errorf("parsing dependency %q: no version after the operator", s)
	}
	op, version := rest[:j], strings.TrimSpace(rest[j:])
	var flags uint32
	switch op {
	case "<":
		flags = senseLess
	case ">":
		flags = senseGreater
	case "=", "==":
		flags = senseEqual
	case "<=":
		flags = senseLess | senseEqual
	case ">=":
		flags = senseGreater | senseEqual
	default:
		return relation{}, fmt.Errorf("parsing dependency %q: unknown operator %q", s, op)
	}
	if name == "" || version == "" || strings.ContainsAny(version, " \t") {
		return relation{}, fmt.Errorf("parsing dependency %q: want NAME [OP VERSION]", s)
	}
	return relation{name: name, version: version, flags: flags}, nil
}
