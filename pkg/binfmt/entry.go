package binfmt

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Kernel limits, from fs/binfmt_misc.c.
const (
	// MaxRegisterLength is the longest string the kernel accepts in one
	// write to the register file (MAX_REGISTER_LENGTH).
	MaxRegisterLength = 1920
	// minRegisterLength is the shortest (":a:E::x::/b:" minus one).
	minRegisterLength = 11
	// bufSize is BINPRM_BUF_SIZE: offset plus magic length must fit in the
	// first 256 bytes of the file the kernel reads.
	bufSize = 256
)

// Entry types.
const (
	TypeMagic     = 'M'
	TypeExtension = 'E'
)

// Entry is one binfmt_misc registration, as a binfmt.d line describes it.
type Entry struct {
	Name string
	// Type is TypeMagic or TypeExtension.
	Type byte
	// Offset is where Magic starts in the file; always 0 for extensions.
	Offset int
	// Magic holds the decoded magic bytes, or the extension (without the
	// dot) for TypeExtension.
	Magic []byte
	// Mask is nil when the line gives none; otherwise len(Mask) == len(Magic).
	Mask        []byte
	Interpreter string
	// Flags is the normalised set of P, O, C and F, in the kernel's
	// read-back order, with O added when C is set (C implies O).
	Flags string
}

// Line is a parsed configuration line with where it came from.
type Line struct {
	Entry
	File string
	Num  int
	// Raw is the line as written after trimming, which is exactly what
	// systemd-binfmt writes to the register file.
	Raw string
}

func (l Line) String() string { return l.File + ":" + strconv.Itoa(l.Num) }

// RegisterLine is what to write to the register file for l: the line as
// written, which is what systemd-binfmt writes, or the rendered entry for
// a Line built in code.
func (l Line) RegisterLine() string {
	if l.Raw != "" {
		return l.Raw
	}
	return l.RegisterString()
}

// LineError is the error for one bad line. It names the file and line.
type LineError struct {
	File string
	Num  int
	Err  error
}

func (e *LineError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %v", e.Num, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Num, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ParseLine parses one register string (a binfmt.d line without comments),
// applying the kernel's checks so that a line this accepts is one the
// kernel accepts too, and an error says which rule it breaks.
func ParseLine(s string) (Entry, error) {
	var e Entry
	err := parseLine(&e, s)
	return e, err
}

// parseLine is ParseLine filling *e, which stays as far as it got on an
// error: returning the error alone, its many checks do not each copy the
// Entry out.
func parseLine(e *Entry, s string) error {
	if len(s) < minRegisterLength {
		return errorf("%w: line is %d bytes, the kernel needs at least %d", ErrInvalid, len(s), minRegisterLength)
	}
	if len(s) > MaxRegisterLength {
		return errorf("%w: line is %d bytes, the kernel accepts at most %d", ErrInvalid, len(s), MaxRegisterLength)
	}
	del := s[0]
	// fs/binfmt_misc.c pads the string with the delimiter past its end
	// and then reads flag letters until the first other byte: with a flag
	// letter as the delimiter it reads into the padding and refuses the
	// string with EINVAL, whatever the flags field holds (verified on
	// 6.18).
	if strings.IndexByte("POCF", del) >= 0 {
		return errorf("%w: delimiter %q is a flag letter, which the kernel refuses as the delimiter", ErrInvalid, del)
	}
	// The kernel reads fields with strchr and string_unescape, which stop
	// at a NUL byte: it refuses a NUL in most fields and cuts the magic
	// short at one. Only as the delimiter does a NUL work.
	if del != 0 && strings.IndexByte(s, 0) >= 0 {
		return errorf("%w: line contains a NUL byte", ErrInvalid)
	}
	// name:type:offset:magic:mask:interpreter:flags. The kernel needs the
	// delimiter after the interpreter; the flags field may be empty.
	// The fields are cut into an array rather than split into a slice:
	// binfmtctl parses every line at each start.
	var fields [7]string
	rest := s[1:]
	for i := range 6 {
		f, r, ok := strings.Cut(rest, s[:1])
		if !ok {
			return errorf("%w: %d fields separated by %q, want 7 (name:type:offset:magic:mask:interpreter:flags)", ErrInvalid, i+1, del)
		}
		fields[i], rest = f, r
	}
	if n := strings.Count(rest, s[:1]); n > 0 {
		return errorf("%w: %d fields separated by %q, want 7; the flags field %q holds the delimiter", ErrInvalid, 7+n, del, rest)
	}
	fields[6] = rest
	name, typ, offset, magic, mask, interp, flags := fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]

	if err := ValidName(name); err != nil {
		return err
	}
	e.Name = name
	switch typ {
	case "M":
		e.Type = TypeMagic
	case "E":
		e.Type = TypeExtension
	default:
		return errorf("%w: type %q, want M (magic) or E (extension)", ErrInvalid, typ)
	}

	if e.Type == TypeMagic {
		if offset != "" {
			n, ok := parseOffset(offset)
			if !ok {
				return errorf("%w: offset %q is not a non-negative decimal number", ErrInvalid, offset)
			}
			e.Offset = n
		}
		if magic == "" {
			return errorf("%w: magic is empty", ErrInvalid)
		}
		m, err := unescape(magic)
		if err != nil {
			return errorf("%w: magic %q: %v", ErrInvalid, magic, err)
		}
		e.Magic = m
		if mask != "" {
			k, err := unescape(mask)
			if err != nil {
				return errorf("%w: mask %q: %v", ErrInvalid, mask, err)
			}
			if len(k) != len(m) {
				return errorf("%w: magic and mask differ in length (%d vs %d bytes)", ErrInvalid, len(m), len(k))
			}
			e.Mask = k
		}
		if e.Offset > bufSize || len(e.Magic) > bufSize-e.Offset {
			return errorf("%w: offset %d plus magic length %d is over %d", ErrInvalid, e.Offset, len(e.Magic), bufSize)
		}
	} else {
		// The kernel ignores the offset and mask fields of an E entry.
		if magic == "" {
			return errorf("%w: extension is empty", ErrInvalid)
		}
		if strings.Contains(magic, "/") {
			return errorf("%w: extension %q contains '/'", ErrInvalid, magic)
		}
		// The entry file shows one field a line.
		if strings.Contains(magic, "\n") {
			return errorf("%w: extension %q contains a newline", ErrInvalid, magic)
		}
		e.Magic = []byte(magic)
	}

	if interp == "" {
		return errorf("%w: interpreter is empty", ErrInvalid)
	}
	if !strings.HasPrefix(interp, "/") {
		return errorf("%w: interpreter %q is not an absolute path", ErrInvalid, interp)
	}
	if strings.Contains(interp, "\n") {
		return errorf("%w: interpreter %q contains a newline", ErrInvalid, interp)
	}
	e.Interpreter = interp

	// The kernel accepts one trailing newline after the flags.
	flags = strings.TrimSuffix(flags, "\n")
	f, err := NormalizeFlags(flags)
	if err != nil {
		return err
	}
	e.Flags = f
	return nil
}

// ValidName checks an entry name by the kernel's rules, and refuses the
// names of binfmt_misc's own control files, as systemd-binfmt does.
func ValidName(name string) error {
	switch {
	case name == "":
		return errorf("%w: name is empty", ErrInvalid)
	case name == "." || name == "..":
		return errorf("%w: name %q is not allowed", ErrInvalid, name)
	case strings.Contains(name, "/"):
		return errorf("%w: name %q contains '/'", ErrInvalid, name)
	case name == "register" || name == "status":
		return errorf("%w: name %q is a binfmt_misc control file", ErrInvalid, name)
	case strings.ContainsAny(name, "\n\x00"):
		return errorf("%w: name %q contains a newline or NUL", ErrInvalid, name)
	case len(name) > nameMax:
		// The kernel's lookup_one_len fails with ENAMETOOLONG, and
		// systemd-binfmt refuses the line.
		return errorf("%w: name is %d bytes, longer than %d", ErrInvalid, len(name), nameMax)
	}
	return nil
}

// nameMax is NAME_MAX, the longest entry file name.
const nameMax = 255

// parseOffset parses an offset field as the kernel's kstrtoint(s, 10)
// does: an optional '+' (kstrtoull skips one) or '-', then decimal digits.
// Only "-0" survives the kernel's check for a negative offset.
func parseOffset(s string) (int, bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || neg && n != 0 {
		return 0, false
	}
	return n, true
}

// NormalizeFlags checks that flags is a subset of POCF and returns it in
// the kernel's read-back order, with O added when C is present.
func NormalizeFlags(flags string) (string, error) {
	var p, o, c, f bool
	for _, r := range flags {
		switch r {
		case 'P':
			p = true
		case 'O':
			o = true
		case 'C':
			c, o = true, true
		case 'F':
			f = true
		default:
			return "", errorf("%w: unknown flag %q in %q, want a subset of POCF", ErrInvalid, r, flags)
		}
	}
	return flagSets[b2i(p)|b2i(o)<<1|b2i(c)<<2|b2i(f)<<3], nil
}

// flagSets holds every normalised flag set, indexed by P=1, O=2, C=4 and
// F=8, so that parsing a line does not build one.
var flagSets = [16]string{
	"", "P", "O", "PO", "C", "PC", "OC", "POC",
	"F", "PF", "OF", "POF", "CF", "PCF", "OCF", "POCF",
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unescape decodes a magic or mask field as the kernel does. First
// scanarg checks that every "\x" is followed by two hex digits. Then
// string_unescape(UNESCAPE_HEX) decodes "\xHH" and copies a backslash
// with the byte after it as they are, so that in "\\x41" the second
// backslash never starts an escape (Linux 6.18 reads it back as
// 5c5c783431).
func unescape(s string) ([]byte, error) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\\' && s[i+1] == 'x' {
			if i+4 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) {
				return nil, errorf("escape %q at byte %d needs two hex digits", s[i:min(i+4, len(s))], i)
			}
			i += 3
		}
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\\' || i+1 == len(s):
			out = append(out, s[i])
		case s[i+1] == 'x':
			out = append(out, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
		default:
			out = append(out, s[i], s[i+1])
			i++
		}
	}
	return out, nil
}

// unhex is the value of the hex digit c, which isHex accepted.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// HasFlag reports whether the entry carries flag c.
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (e Entry) HasFlag(c byte) bool { return strings.IndexByte(e.Flags, c) >= 0 }

// putField writes one field of a register string, del first. It is a
// call, not inlined into each of RegisterString's ten fields: the
// Builder's checks made those 600-odd instructions of the helper.
//
//go:noinline
func putField(b *strings.Builder, del byte, s string) {
	b.WriteByte(del)
	b.WriteString(s)
}

// RegisterString renders the entry as a string for the register file.
// Printable magic and mask bytes stay literal and the rest are escaped as
// \xHH, so the string stays short; the delimiter is ':' unless the name
// or a path needs another one.
func (e Entry) RegisterString() string {
	used := e.Name + e.Interpreter
	if e.Type == TypeExtension {
		used += string(e.Magic)
	}
	del := pickDelimiter(used)
	var b strings.Builder
	w := func(s string) { putField(&b, del, s) }
	w(e.Name)
	w(string(e.Type))
	if e.Type == TypeExtension {
		w("")
		w(string(e.Magic))
		w("")
	} else {
		w(strconv.Itoa(e.Offset))
		w(escape(e.Magic, del))
		w(escape(e.Mask, del))
	}
	w(e.Interpreter)
	w(e.Flags)
	return b.String()
}

func escape(b []byte, del byte) string {
	var s strings.Builder
	for _, c := range b {
		// A backslash is always escaped, so that "\x41" can never be read
		// back as an escape.
		if c <= ' ' || c >= 0x7f || c == '\\' || c == del {
			fmt.Fprintf(&s, "\\x%02x", c)
			continue
		}
		s.WriteByte(c)
	}
	return s.String()
}

// delimiters are the delimiters RegisterString may use, most readable
// first. None can appear in the type, offset, escapes or flags it writes
// ("ME", digits, "\\x" and a-f, "POCF"), and none is whitespace or starts
// a binfmt.d comment.
//
// It is built on first use rather than at start-up, which binfmtctl pays
// in every rpm transaction.
var delimiters = sync.OnceValue(func() []byte {
	d := []byte(":|,!%@~^+=&*?<>[]{}()$-_.'\"`ghijklmnopqrstuvwyzGHIJKLNQRSTUVWXYZ")
	for c := 1; c < 256; c++ {
		if (c < ' ' || c >= 0x7f) && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' {
			d = append(d, byte(c))
		}
	}
	return d
})

func pickDelimiter(used string) byte {
	for _, d := range delimiters() {
		if strings.IndexByte(used, d) < 0 {
			return d
		}
	}
	return ':'
}

// Parse reads binfmt.d lines from r with systemd's rules: each line is
// trimmed of surrounding whitespace, and blank lines and lines starting
// with '#' or ';' are skipped. It returns every good line and one
// *LineError per bad one, so that one bad line does not stop the others,
// as in systemd-binfmt.
func Parse(r io.Reader, file string) ([]Line, []error) {
	data, err := io.ReadAll(r)
	lines, errs, n := parseText(string(data), file)
	if err != nil {
		errs = append(errs, &LineError{File: file, Num: n, Err: err})
	}
	return lines, errs
}

// ParseText is Parse of text already in memory, without a copy.
func ParseText(text, file string) ([]Line, []error) {
	lines, errs, _ := parseText(text, file)
	return lines, errs
}

// parseText parses the whole text of a file. It also returns the number
// the line after the last one would have. It works on the text in place,
// without a bufio.Reader: binfmtctl parses a few dozen files per run, and
// inside an rpm transaction every buffer it touches is fresh memory.
func parseText(text, file string) (lines []Line, errs []error, n int) {
	for n = 1; text != ""; n++ {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		// systemd's strstrip trims WHITESPACE, which is " \t\n\r": a
		// vertical tab or a form feed stays part of the line.
		s := strings.Trim(line, " \t\n\r")
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		// systemd-binfmt writes the line with a newline appended, and the
		// kernel counts that newline against MaxRegisterLength.
		if len(s) >= MaxRegisterLength {
			errs = append(errs, &LineError{File: file, Num: n, Err: errorf("%w: line is %d bytes; with the newline systemd-binfmt adds, the kernel accepts at most %d", ErrInvalid, len(s), MaxRegisterLength-1)})
			continue
		}
		e, perr := ParseLine(s)
		if perr != nil {
			errs = append(errs, &LineError{File: file, Num: n, Err: perr})
			continue
		}
		lines = append(lines, Line{Entry: e, File: file, Num: n, Raw: s})
	}
	return lines, errs, n
}

// ParseFile parses the binfmt.d file at path; see Parse.
func ParseFile(path string) ([]Line, []error) {
	return parseFileAs(path, path)
}

// parseFileAs is ParseFile of the file at path, which errors and lines
// call shown (the path as the system sees it, under a root).
func parseFileAs(path, shown string) ([]Line, []error) {
	// The text is copied into one string below, so it is read into a
	// buffer on the stack.
	var buf [1024]byte
	data, err := readConfigInto(path, shown, buf[:])
	if err != nil {
		return nil, []error{errorf("reading binfmt.d file %q: %w", shown, err)}
	}
	lines, errs, _ := parseText(string(data), shown)
	return lines, errs
}
