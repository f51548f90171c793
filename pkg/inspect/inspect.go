package inspect

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Options control File.
type Options struct {
	// Host is the architecture the package would be installed on (GOARCH
	// or uname -m), for the host-family lint. "" means the package's
	// own architecture, or DefaultHost for a noarch package.
	Host        string
	DefaultHost string
	// Keyring verifies signatures. Without it, signatures are listed by
	// key id but not verified.
	Keyring openpgp.EntityList
}

// Report is what File found.
type Report struct {
	File    string `json:"file"`
	Name    string `json:"name"`
	Epoch   string `json:"epoch,omitempty"`
	Version string `json:"version"`
	Release string `json:"release"`
	Arch    string `json:"arch"`
	// NEVRA is name-[epoch:]version-release.arch, as rpm -q prints it.
	NEVRA      string `json:"nevra"`
	Size       int64  `json:"size"`
	Compressor string `json:"payload_compressor"`
	// Format is the rpm package format: 4 (rpm 4, and what build
	// writes) or 6 (rpm 6's rpmbuild's default).
	Format int `json:"rpm_format"`

	Digests    Digests     `json:"digests"`
	Signatures []Signature `json:"signatures"`

	Requires  []string `json:"requires"`
	Provides  []string `json:"provides"`
	Conflicts []string `json:"conflicts"`
	Obsoletes []string `json:"obsoletes"`

	Scriptlets []Scriptlet   `json:"scriptlets"`
	Files      []PackageFile `json:"files"`
	// Confs are the binfmt.d files in the payload, with their contents.
	Confs []Conf `json:"binfmt_d"`
	// Entries are the binfmt entries those files define, in file order.
	Entries []Entry `json:"entries"`

	Host     string    `json:"host"`
	Problems []Problem `json:"problems"`
}

// Digests says which digests were checked; all of them matched, or File
// would have failed.
type Digests struct {
	Header      string `json:"header"`       // algorithm of the header digest
	Payload     string `json:"payload"`      // algorithm of the payload digest
	FilesOK     int    `json:"files_ok"`     // regular files whose digest matched
	FilesNoHash int    `json:"files_no_sum"` // files the header gives no digest for
}

// Signature is one OpenPGP signature in the signature header.
type Signature struct {
	KeyID      string    `json:"key_id"`
	Hash       string    `json:"hash"`
	Created    time.Time `json:"created"`
	HeaderOnly bool      `json:"header_only"`
	// Verified is true when Options.Keyring held the key and the
	// signature checked out; Signer then names the key.
	Verified bool   `json:"verified"`
	Signer   string `json:"signer,omitempty"`
}

// Scriptlet is one of the package's scripts.
type Scriptlet struct {
	Phase string `json:"phase"` // "pretrans", "pre", "post", "preun", "postun", "posttrans"
	Prog  string `json:"prog"`
	Body  string `json:"body"`
}

// PackageFile is one entry of the package's file list.
type PackageFile struct {
	Path   string `json:"path"`
	Mode   uint32 `json:"mode"`
	Owner  string `json:"owner"`
	Group  string `json:"group"`
	Size   int64  `json:"size"`
	Flags  uint32 `json:"flags"`
	Digest string `json:"digest,omitempty"`
	LinkTo string `json:"link_to,omitempty"`
}

// Conf is a binfmt.d file from the payload.
type Conf struct {
	Path string `json:"path"`
	Data string `json:"data"`
	// Target is the file whose data Path has, when Path is a symlink
	// (resolved within the package) or a hardlink of another file.
	Target string `json:"target,omitempty"`
	// Masked is true for a symlink to /dev/null, which defines nothing.
	Masked bool `json:"masked,omitempty"`
	read   bool // Data are the file's, not left out for a problem
}

// Entry is one binfmt entry a binfmt.d file in the package defines.
type Entry struct {
	// Where: the file in the package and the line.
	File string `json:"file"`
	Line int    `json:"line"`

	Name        string `json:"name"`
	Type        string `json:"type"`
	Offset      int    `json:"offset"`
	Magic       string `json:"magic,omitempty"` // hex
	Mask        string `json:"mask,omitempty"`  // hex
	Extension   string `json:"extension,omitempty"`
	Interpreter string `json:"interpreter"`
	Flags       string `json:"flags"`
	// Target is the qemu target whose magic and mask the entry has,
	// if any; Families are the qemu families whose programs it matches.
	Target   string   `json:"target,omitempty"`
	Families []string `json:"families,omitempty"`
	// Shipped says the interpreter is in the package; Required that a
	// Requires names its path.
	Shipped  bool `json:"interpreter_shipped"`
	Required bool `json:"interpreter_required"`
}

// Severity of a Problem.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one lint finding, about a file in the package (or the
// scriptlets).
type Problem struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Message  string   `json:"message"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s", p.Severity, p.File, p.Message)
}

// Errors returns the problems of SeverityError.
func (r *Report) Errors() []Problem {
	var out []Problem
	for _, p := range r.Problems {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

// File reads the rpm at path and lints it. It fails, without panicking,
// for anything that is not an intact rpm: a digest that does not match, a
// signature that does not verify against opts.Keyring, a damaged header
// or payload.
func File(p string, opts Options) (*Report, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("inspecting %q: %w: not a regular file", p, ErrNotRPM)
	}
	return Read(f, st.Size(), p, opts)
}

// Read is File for an rpm of size bytes in r; name is how errors and the
// report call it.
func Read(r io.ReaderAt, size int64, name string, opts Options) (rep *Report, err error) {
	payloadAt, err := checkStructure(io.NewSectionReader(r, 0, size), size)
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", name, err)
	}
	sigHdr, hdr, err := readHeaders(r, payloadAt)
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", name, err)
	}
	// The structure is sound, but the arrays of a header whose digest
	// is right can still disagree in length, which go-rpmutils indexes
	// without checking.
	defer func() {
		if v := recover(); v != nil {
			rep, err = nil, fmt.Errorf("inspecting %q: %w: go-rpmutils failed on it: %v", name, ErrMalformed, v)
		}
	}()

	// Empty lists, not null, in JSON.
	rep = &Report{File: name, Size: size, Signatures: []Signature{}, Requires: []string{}, Provides: []string{},
		Conflicts: []string{}, Obsoletes: []string{}, Scriptlets: []Scriptlet{}, Files: []PackageFile{},
		Confs: []Conf{}, Entries: []Entry{}, Problems: []Problem{}}
	rep.Format = hdr.rpmFormat()
	if rep.Format >= 6 {
		err = rep.verifyV6(sigHdr, hdr, io.NewSectionReader(r, payloadAt, size-payloadAt), opts.Keyring)
	} else {
		err = rep.verify(io.NewSectionReader(r, 0, size), opts.Keyring)
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", name, err)
	}
	pkg, err := rpmutils.ReadRpm(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("inspecting %q: reading the header: %w", name, err)
	}
	if err := rep.readHeader(pkg.Header); err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", name, err)
	}
	if err := rep.readPayload(pkg, io.NewSectionReader(r, payloadAt, size-payloadAt)); err != nil {
		return nil, fmt.Errorf("inspecting %q: %w", name, err)
	}
	rep.Host = opts.Host
	if rep.Host == "" {
		rep.Host = rep.Arch
		if rep.Arch == "noarch" || rep.Arch == "" {
			rep.Host = opts.DefaultHost
		}
	}
	rep.lint()
	return rep, nil
}

// verify checks the header digest, the payload digest and the signatures.
func (r *Report) verify(rd io.Reader, keyring openpgp.EntityList) error {
	hdr, sigs, err := rpmutils.Verify(rd, keyring)
	if err != nil {
		var nokey rpmutils.KeyNotFoundError
		if errors.As(err, &nokey) {
			return fmt.Errorf("checking signatures: signed with key %016x, which is not in the keyring", nokey.KeyID)
		}
		// Say which part is damaged; go-rpmutils calls the header's
		// digest one "in signature header".
		switch msg := err.Error(); {
		case strings.Contains(msg, "mismatch in signature header"):
			return fmt.Errorf("%w: the header does not match its digest in the signature header (%v)", ErrDigest, err)
		case strings.Contains(msg, "payload") && strings.Contains(msg, "mismatch"):
			return fmt.Errorf("%w: the payload does not match its digest in the header: it is damaged, truncated or has bytes appended (%v)", ErrDigest, err)
		}
		return fmt.Errorf("checking digests and signatures: %w", err)
	}
	r.Digests.Header = "SHA1"
	if hdr.HasTag(rpmutils.SIG_SHA256) {
		r.Digests.Header = "SHA256"
	}
	r.Digests.Payload = "MD5"
	if hdr.HasTag(tagPayloadDigest) {
		r.Digests.Payload = hashName(payloadAlgo(hdr))
	}
	for _, s := range sigs {
		sig := Signature{
			KeyID:      fmt.Sprintf("%016x", s.KeyId),
			Hash:       hashName(s.Hash),
			Created:    s.CreationTime.UTC(),
			HeaderOnly: s.HeaderOnly,
			Verified:   keyring != nil,
		}
		if s.Signer != nil {
			sig.Signer = s.PrimaryName
		}
		r.Signatures = append(r.Signatures, sig)
	}
	return nil
}

func payloadAlgo(hdr *rpmutils.RpmHeader) crypto.Hash {
	algo, err := hdr.GetInts(rpmutils.PAYLOADDIGESTALGO)
	if err != nil || len(algo) == 0 {
		return crypto.MD5
	}
	return fileHash(algo[0])
}

// fileHash maps rpm's PGPHASHALGO numbers to hashes.
func fileHash(algo int) crypto.Hash {
	switch algo {
	case 1:
		return crypto.MD5
	case 2:
		return crypto.SHA1
	case 8:
		return crypto.SHA256
	case 9:
		return crypto.SHA384
	case 10:
		return crypto.SHA512
	case 11:
		return crypto.SHA224
	}
	return 0
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "unknown"
	}
	return strings.ReplaceAll(h.String(), "-", "")
}

// Tags go-rpmutils has no names for (rpm's lib/rpmtag.h).
const (
	tagPretrans      = 1151
	tagPosttrans     = 1152
	tagPretransProg  = 1153
	tagPosttransProg = 1154
	tagPayloadDigest = 5092
)

var scriptTags = []struct {
	phase     string
	tag, prog int
}{
	{"pretrans", tagPretrans, tagPretransProg},
	{"pre", rpmutils.PREIN, rpmutils.PREINPROG},
	{"post", rpmutils.POSTIN, rpmutils.POSTINPROG},
	{"preun", rpmutils.PREUN, rpmutils.PREUNPROG},
	{"postun", rpmutils.POSTUN, rpmutils.POSTUNPROG},
	{"posttrans", tagPosttrans, tagPosttransProg},
}

func (r *Report) readHeader(h *rpmutils.RpmHeader) error {
	nevra, err := h.GetNEVRA()
	if err != nil {
		return fmt.Errorf("reading name, version and architecture: %w", err)
	}
	r.Name, r.Version, r.Release, r.Arch = nevra.Name, nevra.Version, nevra.Release, nevra.Arch
	if nevra.Epoch != "" && nevra.Epoch != "0" || h.HasTag(rpmutils.EPOCH) {
		r.Epoch = nevra.Epoch
	}
	r.NEVRA = r.Name + "-"
	if r.Epoch != "" {
		r.NEVRA += r.Epoch + ":"
	}
	r.NEVRA += r.Version + "-" + r.Release + "." + r.Arch
	r.Compressor, _ = h.GetString(rpmutils.PAYLOADCOMPRESSOR)
	if r.Compressor == "" {
		r.Compressor = "gzip"
	}

	r.Requires = append(r.Requires, relations(h, rpmutils.REQUIRENAME, rpmutils.REQUIREFLAGS, rpmutils.REQUIREVERSION)...)
	r.Provides = append(r.Provides, relations(h, rpmutils.PROVIDENAME, rpmutils.PROVIDEFLAGS, rpmutils.PROVIDEVERSION)...)
	r.Conflicts = append(r.Conflicts, relations(h, rpmutils.CONFLICTNAME, rpmutils.CONFLICTFLAGS, rpmutils.CONFLICTVERSION)...)
	r.Obsoletes = append(r.Obsoletes, relations(h, rpmutils.OBSOLETENAME, rpmutils.OBSOLETEFLAGS, rpmutils.OBSOLETEVERSION)...)

	for _, s := range scriptTags {
		body, err := h.GetString(s.tag)
		if err != nil {
			continue
		}
		prog := "/bin/sh"
		if ps, err := h.GetStrings(s.prog); err == nil && len(ps) > 0 {
			prog = strings.Join(ps, " ")
		}
		r.Scriptlets = append(r.Scriptlets, Scriptlet{Phase: s.phase, Prog: prog, Body: body})
	}

	files, err := h.GetFiles()
	if err != nil {
		return fmt.Errorf("reading the file list: %w", err)
	}
	for _, f := range files {
		r.Files = append(r.Files, PackageFile{
			Path:   f.Name(),
			Mode:   uint32(f.Mode()),
			Owner:  f.UserName(),
			Group:  f.GroupName(),
			Size:   f.Size(),
			Flags:  uint32(f.Flags()),
			Digest: f.Digest(),
			LinkTo: f.Linkname(),
		})
	}
	return nil
}

// relations renders a dependency list the way rpm -qR prints it.
func relations(h *rpmutils.RpmHeader, nameTag, flagsTag, versionTag int) []string {
	names, err := h.GetStrings(nameTag)
	if err != nil {
		return nil
	}
	flags, _ := h.GetInts(flagsTag)
	versions, _ := h.GetStrings(versionTag)
	out := make([]string, 0, len(names))
	for i, n := range names {
		s := n
		if i < len(versions) && versions[i] != "" && i < len(flags) {
			op := ""
			if flags[i]&rpmutils.RPMSENSE_LESS != 0 {
				op += "<"
			}
			if flags[i]&rpmutils.RPMSENSE_GREATER != 0 {
				op += ">"
			}
			if flags[i]&rpmutils.RPMSENSE_EQUAL != 0 {
				op += "="
			}
			s += " " + op + " " + versions[i]
		}
		out = append(out, s)
	}
	return out
}

// isConf says whether a packaged path is a binfmt.d file that
// systemd-binfmt reads: *.conf directly in a binfmt.d directory.
func isConf(p string) bool {
	dir, base := path.Split(p)
	return strings.HasSuffix(base, ".conf") && path.Base(dir) == "binfmt.d"
}

// ReadKeyring reads OpenPGP public keys, armored or binary, for
// Options.Keyring.
func ReadKeyring(p string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	var keys openpgp.EntityList
	if block, aerr := armor.Decode(bytes.NewReader(data)); aerr == nil {
		keys, err = openpgp.ReadKeyRing(block.Body)
	} else {
		keys, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("reading keyring %q: %w", p, err)
	}
	return keys, nil
}

// parseConfs parses the package's binfmt.d files; a file that does not
// parse is a problem, and its good lines still count.
func (r *Report) parseConfs() {
	for _, c := range r.Confs {
		if !c.read || c.Masked {
			continue
		}
		if len(r.Entries) == maxBinfmtEntries {
			r.problem(SeverityError, c.Path, fmt.Sprintf("not parsed: more than %d binfmt entries in the package already", maxBinfmtEntries))
			continue
		}
		// Lines past what can still be reported are not parsed: a
		// million-line file would otherwise cost its lines in memory.
		text, rest := c.Data, ""
		if n := maxBinfmtEntries - len(r.Entries) + maxLineErrors + 1; strings.Count(text, "\n") > n {
			at := 0
			for range n {
				at += strings.IndexByte(text[at:], '\n') + 1
			}
			text, rest = text[:at], text[at:]
		}
		lines, errs := binfmt.ParseText(text, c.Path)
		// A file of a million bad lines makes one problem each only up to
		// a point: the report stays readable and its size bounded.
		for i, err := range errs {
			if i == maxLineErrors {
				r.problem(SeverityError, c.Path, fmt.Sprintf("does not parse: %d more lines do not parse", len(errs)-i))
				break
			}
			r.problem(SeverityError, c.Path, "does not parse: "+err.Error())
		}
		for _, l := range lines {
			if len(r.Entries) == maxBinfmtEntries {
				r.problem(SeverityError, c.Path, fmt.Sprintf("line %d: more than %d binfmt entries in the package; the rest are not checked", l.Num, maxBinfmtEntries))
				break
			}
			e := Entry{
				File:        c.Path,
				Line:        l.Num,
				Name:        l.Name,
				Type:        string(l.Type),
				Offset:      l.Offset,
				Interpreter: l.Interpreter,
				Flags:       l.Flags,
			}
			if l.Type == binfmt.TypeMagic {
				e.Magic = hex.EncodeToString(l.Magic)
				e.Mask = hex.EncodeToString(l.Mask)
			} else {
				e.Extension = string(l.Magic)
			}
			r.Entries = append(r.Entries, e)
		}
		if rest != "" && len(r.Entries) < maxBinfmtEntries && len(errs) <= maxLineErrors {
			r.problem(SeverityError, c.Path, fmt.Sprintf("line %d: more than %d lines; the rest of the file is not checked", strings.Count(text, "\n")+1, strings.Count(text, "\n")))
		}
	}
}
