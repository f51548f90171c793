package inspect

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// rpm's package format v6 (docs/manual/format_v6.md in rpm 6), which
// rpm 6's rpmbuild writes by default (%_rpmformat 6). It keeps v4's
// layout (lead, signature header, header, payload) but:
//
//   - the signature header holds only cryptography: SHA256 (273) and
//     SHA3-256 (279) digests of the header, OpenPGP signatures of the
//     header (278, base64, any number), optionally a v4-style RSA or DSA
//     header signature for rpm 4, and no size, MD5 or header+payload
//     signature;
//   - the header names its format in RPMTAG_RPMFORMAT (5114) and digests
//     the compressed payload with SHA256 (5092), SHA512 (5121) and
//     SHA3-256 (5123), without PAYLOADDIGESTALGO (5093), which go-rpmutils
//     needs and so fails with "no usable payload digest found";
//   - the payload is always rpm's stripped cpio ("07070X", the file's
//     index in the header instead of a cpio header), which go-rpmutils
//     0.4 misreads (it does not skip the padding after the 14-byte entry
//     header) and cpioReader reads.
//
// So for v6 packages File checks digests and signatures here; the header
// itself go-rpmutils reads well (its SHA256 digest is v4's tag).
const (
	tagRPMFormat        = 5114
	tagPayloadSHA512    = 5121
	tagPayloadSHA3_256  = 5123
	tagPayloadDigestAlg = 5093

	sigTagDSA      = 267
	sigTagRSA      = 268
	sigTagSHA1     = 269
	sigTagSHA256   = 273
	sigTagOpenPGP  = 278
	sigTagSHA3_256 = 279
)

// rawHeader is a header as it is on disk, for the tags go-rpmutils does
// not give access to or misreads. checkStructure has validated it.
type rawHeader struct {
	// bytes is the whole header, intro to end of data, unpadded: what
	// its digests and signatures cover.
	bytes   []byte
	data    []byte
	entries map[uint32]rawEntry
}

type rawEntry struct{ typ, off, count uint32 }

// parseRawHeader reads the header at the start of b.
func parseRawHeader(b []byte) rawHeader {
	n := binary.BigEndian.Uint32(b[8:])
	size := binary.BigEndian.Uint32(b[12:])
	h := rawHeader{entries: map[uint32]rawEntry{}}
	h.bytes = b[:16+16*n+size]
	h.data = h.bytes[16+16*n:]
	for i := range n {
		e := b[16+16*i:]
		h.entries[binary.BigEndian.Uint32(e)] = rawEntry{binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])}
	}
	return h
}

// strings returns a string, string array or i18n string tag's values.
func (h rawHeader) strings(tag uint32) []string {
	e, ok := h.entries[tag]
	if !ok || e.typ < 6 || e.typ == 7 {
		return nil
	}
	var out []string
	rest := h.data[e.off:]
	for range e.count {
		k := bytes.IndexByte(rest, 0)
		if k < 0 {
			break
		}
		out = append(out, string(rest[:k]))
		rest = rest[k+1:]
	}
	return out
}

// binary returns a BIN tag's bytes.
func (h rawHeader) binary(tag uint32) []byte {
	e, ok := h.entries[tag]
	if !ok || e.typ != 7 {
		return nil
	}
	return h.data[e.off : e.off+e.count]
}

// int32 returns an INT32 tag's first value.
func (h rawHeader) int32(tag uint32) (uint32, bool) {
	e, ok := h.entries[tag]
	if !ok || e.typ != 4 || e.count == 0 {
		return 0, false
	}
	return binary.BigEndian.Uint32(h.data[e.off:]), true
}

// rpmFormat returns the header's RPMTAG_RPMFORMAT, 4 when it has none
// (rpm 4 never writes it).
func (h rawHeader) rpmFormat() int {
	if v, ok := h.int32(tagRPMFormat); ok {
		return int(v)
	}
	return 4
}

// readHeaders reads the signature header and the header of an rpm whose
// structure checkStructure has validated, and where its payload starts.
func readHeaders(r io.ReaderAt, payload int64) (sig, hdr rawHeader, err error) {
	b := make([]byte, payload-leadSize)
	if _, err := r.ReadAt(b, leadSize); err != nil {
		return sig, hdr, fmt.Errorf("reading the headers: %w", err)
	}
	sig = parseRawHeader(b)
	hdr = parseRawHeader(b[(len(sig.bytes)+7)&^7:])
	return sig, hdr, nil
}

// namedDigest is one digest a package carries: its name as rpm -Kv
// prints it, the hash, and the hex value the package gives ("" when the
// package has none of that kind).
type namedDigest struct {
	name string
	new  func() hash.Hash
	want string
}

// checkDigests hashes data with every digest the package gives and
// returns their names; what says what data is, for errors.
func checkDigests(what string, digests []namedDigest, data io.Reader) ([]string, error) {
	var have []namedDigest
	var hs []hash.Hash
	var ws []io.Writer
	for _, d := range digests {
		if d.want != "" {
			h := d.new()
			have, hs, ws = append(have, d), append(hs, h), append(ws, h)
		}
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("%w: the %s has no digest", ErrDigest, what)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), data); err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	var names []string
	for i, d := range have {
		want := strings.ToLower(d.want)
		if got := hex.EncodeToString(hs[i].Sum(nil)); got != want {
			return nil, fmt.Errorf("%w: the %s does not match its digest (%s %s, the package says %s)", ErrDigest, what, d.name, got, want)
		}
		names = append(names, d.name)
	}
	return names, nil
}

// verifyV6 checks a v6 package's header digests, payload digests and
// OpenPGP signatures, as rpm -K does, and records what it checked. The
// payload's ALT digests (of the uncompressed payload) are left out, as
// rpm -K leaves them; every file's digest is checked when the payload is
// read.
func (r *Report) verifyV6(sig, hdr rawHeader, payload io.Reader, keyring openpgp.EntityList) error {
	one := func(h rawHeader, tag uint32) string {
		if v := h.strings(tag); len(v) > 0 {
			return v[0]
		}
		return ""
	}

	// The header's digests are in the signature header; they cover the
	// header as it is on disk.
	names, err := checkDigests("header", []namedDigest{
		{"SHA256", sha256.New, one(sig, sigTagSHA256)},
		{"SHA3-256", func() hash.Hash { return sha3.New256() }, one(sig, sigTagSHA3_256)},
		{"SHA1", crypto.SHA1.New, one(sig, sigTagSHA1)},
	}, bytes.NewReader(hdr.bytes))
	if err != nil {
		return err
	}
	r.Digests.Header = strings.Join(names, ", ")

	// The payload's are in the header, which the header digests and the
	// signatures cover. PAYLOADDIGEST is SHA256 in v6; a v4 package names
	// its algorithm in PAYLOADDIGESTALGO.
	sha256Algo := "SHA256"
	newPayload := sha256.New
	if a, ok := hdr.int32(tagPayloadDigestAlg); ok {
		h := fileHash(int(a))
		if !h.Available() {
			return fmt.Errorf("%w: the payload digest algorithm %d is unknown", ErrDigest, a)
		}
		sha256Algo, newPayload = hashName(h), h.New
	}
	names, err = checkDigests("payload", []namedDigest{
		{sha256Algo, newPayload, one(hdr, tagPayloadDigest)},
		{"SHA512", sha512.New, one(hdr, tagPayloadSHA512)},
		{"SHA3-256", func() hash.Hash { return sha3.New256() }, one(hdr, tagPayloadSHA3_256)},
	}, payload)
	if err != nil {
		if errors.Is(err, ErrDigest) {
			return fmt.Errorf("%w: it is damaged, truncated or has bytes appended", err)
		}
		return err
	}
	r.Digests.Payload = strings.Join(names, ", ")

	// Signatures: v6's OpenPGP ones; the v4-style RSA or DSA tag only
	// when there are none, as rpm 6 does (it is a copy for rpm 4).
	var blobs [][]byte
	for _, s := range sig.strings(sigTagOpenPGP) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("checking signatures: an OpenPGP signature in the signature header is not base64: %v", err)
		}
		blobs = append(blobs, b)
	}
	if len(blobs) == 0 {
		for _, tag := range []uint32{sigTagRSA, sigTagDSA} {
			if b := sig.binary(tag); b != nil {
				blobs = append(blobs, b)
			}
		}
	}
	for _, b := range blobs {
		s, err := verifyHeaderSignature(b, hdr.bytes, keyring)
		if err != nil {
			return err
		}
		r.Signatures = append(r.Signatures, s)
	}
	return nil
}

// verifyHeaderSignature parses one OpenPGP signature of the header and,
// with a keyring, verifies it.
func verifyHeaderSignature(blob, header []byte, keyring openpgp.EntityList) (Signature, error) {
	rd := bytes.NewReader(blob)
	p, err := packet.Read(rd)
	if err != nil {
		return Signature{}, fmt.Errorf("checking signatures: reading an OpenPGP signature: %v", err)
	}
	sig, ok := p.(*packet.Signature)
	if !ok || rd.Len() > 0 {
		return Signature{}, fmt.Errorf("checking signatures: the signature header holds an OpenPGP %T where one signature packet belongs", p)
	}
	var keyID uint64
	switch {
	case sig.IssuerKeyId != nil:
		keyID = *sig.IssuerKeyId
	case len(sig.IssuerFingerprint) == 32:
		// A v6 key's id is its fingerprint's first 8 bytes.
		keyID = binary.BigEndian.Uint64(sig.IssuerFingerprint)
	case len(sig.IssuerFingerprint) == 20:
		// A v4 key's id is its fingerprint's last 8 bytes.
		keyID = binary.BigEndian.Uint64(sig.IssuerFingerprint[12:])
	default:
		return Signature{}, errors.New("checking signatures: an OpenPGP signature names no issuer")
	}
	out := Signature{
		KeyID:      fmt.Sprintf("%016x", keyID),
		Hash:       hashName(sig.Hash),
		Created:    sig.CreationTime.UTC(),
		HeaderOnly: true,
	}
	if keyring == nil {
		return out, nil
	}
	keys := keyring.KeysById(keyID)
	if len(keys) == 0 || keys[0].PublicKey == nil {
		return Signature{}, fmt.Errorf("checking signatures: signed with key %016x, which is not in the keyring", keyID)
	}
	h, err := sig.PrepareVerify()
	if err != nil {
		return Signature{}, fmt.Errorf("checking signatures: %v", err)
	}
	h.Write(header)
	if err := keys[0].PublicKey.VerifySignature(h, sig); err != nil {
		return Signature{}, fmt.Errorf("%w: the header's OpenPGP signature by key %016x does not verify: %v", ErrDigest, keyID, err)
	}
	out.Verified = true
	if id := keys[0].Entity.PrimaryIdentity(); id != nil {
		out.Signer = id.Name
	}
	return out, nil
}
