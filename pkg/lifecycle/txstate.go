package lifecycle

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultTxDir holds the state the helper's file triggers share within one
// rpm transaction. /run is the right place: the state means nothing after
// the transaction, and nothing after a reboot.
const DefaultTxDir = "/run/binfmtctl"

// txFile is the one file in the transaction directory.
const txFile = "transaction"

// txHeader starts the file; the number is the format's version.
const txHeader = "# binfmtctl transaction 1\n"

// TxState is what the helper's triggers keep during one rpm transaction:
// which steps ran (so that two installed packages carrying the same
// triggers do not act twice), the guard's snapshot of the live table, and
// the binfmt.d files rpm said were leaving, with what they defined while
// they still existed.
//
// Its text form, one item a line:
//
//	# binfmtctl transaction 1
//	id 4242 88123
//	ran guard-before
//	snapshot guard-before
//	entry qemu-aarch64
//	  enabled
//	  interpreter /usr/bin/qemu-aarch64-static
//	  ...
//	file /usr/lib/binfmt.d/qemu-aarch64-static.conf
//	owner qemu-user-static-aarch64 plain
//	line :qemu-aarch64:M::...
//	seen /usr/lib/binfmt.d/qemu-aarch64_be-static.conf
//	line :qemu-aarch64_be:M::...
type TxState struct {
	// ID identifies the transaction: the rpm process's pid and start
	// time. A state of another ID is stale and ignored.
	ID  string
	Ran []string
	// SnapshotBy is the step that took Snapshot, "" for none.
	SnapshotBy string
	Snapshot   []RawEntry
	// Early is the table as the last %filetriggerin saw it, before the
	// %post of a package that installs binfmt.d files: the guard's
	// fallback when systemd's trigger ran before guard-before.
	Early    []RawEntry
	HasEarly bool
	Leaving  []LeavingFile
	// Seen are the binfmt.d files on disk, with their lines, when the
	// first %filetriggerin of the transaction ran: in the transaction
	// that installs the helper no leaving step ran, so a file that the
	// transaction removes later is known only from here (it is gone
	// from disk by guard-after).
	Seen []LeavingFile
}

// RawEntry is a live entry's file, byte for byte, and the inode number of
// that file: the kernel makes a new inode for every registration, so the
// same number later means the entry was never removed in between.
type RawEntry struct {
	Name string
	Ino  uint64
	Raw  []byte
}

// LeavingFile is a binfmt.d file rpm is about to remove or replace.
type LeavingFile struct {
	Path   string
	Owners []Owner
	// Lines are the file's lines as written, parsed again when used.
	Lines []string
}

// HasRun reports whether step ran in this transaction.
//
// Not inlined: one copy for its callers keeps binfmtctl small.
//
//go:noinline
func (s *TxState) HasRun(step string) bool {
	for _, r := range s.Ran {
		if r == step {
			return true
		}
	}
	return false
}

// Render writes the text form.
func (s *TxState) Render() []byte {
	var b strings.Builder
	b.WriteString(txHeader)
	txItem(&b, "id", s.ID)
	for _, r := range s.Ran {
		txItem(&b, "ran", r)
	}
	if s.HasEarly {
		b.WriteString("early\n")
		txEntries(&b, s.Early)
	}
	if s.SnapshotBy != "" {
		txItem(&b, "snapshot", s.SnapshotBy)
		txEntries(&b, s.Snapshot)
	}
	for _, f := range s.Leaving {
		txItem(&b, "file", f.Path)
		for _, o := range f.Owners {
			kind := "plain"
			if o.Hooks {
				kind = "hooks"
			}
			txItem(&b, "owner", o.Name+" "+kind)
		}
		txLines(&b, f.Lines)
	}
	for _, f := range s.Seen {
		txItem(&b, "seen", f.Path)
		txLines(&b, f.Lines)
	}
	return []byte(b.String())
}

// txItem writes the line "key val". It and the other writers of Render
// are not inlined: one copy each keeps binfmtctl small.
//
//go:noinline
func txItem(b *strings.Builder, key, val string) {
	b.WriteString(key + " " + val + "\n")
}

//go:noinline
func txLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		txItem(b, "line", l)
	}
}

//go:noinline
func txEntries(b *strings.Builder, es []RawEntry) {
	for _, e := range es {
		txItem(b, "entry", e.Name+" "+strconv.FormatUint(e.Ino, 10))
		for _, l := range strings.SplitAfter(string(e.Raw), "\n") {
			if l != "" {
				b.WriteString("  " + l)
			}
		}
		if len(e.Raw) > 0 && e.Raw[len(e.Raw)-1] != '\n' {
			b.WriteString("\n")
		}
	}
}

// ErrBadTxState is wrapped by errors about a transaction file that does not
// parse.
var ErrBadTxState = errors.New("bad transaction state")

// ParseTxState parses the text form. Anything it does not understand is an
// error: the state is only ever written by Render.
func ParseTxState(data []byte) (*TxState, error) {
	text := string(data)
	if !strings.HasPrefix(text, txHeader) {
		return nil, errorf("%w: no %q header", ErrBadTxState, strings.TrimSpace(txHeader))
	}
	s := &TxState{}
	var entry *RawEntry
	var file *LeavingFile
	seen := false // file is one of Seen, which has no owners
	var section *[]RawEntry
	sc := bufio.NewScanner(strings.NewReader(text[len(txHeader):]))
	sc.Buffer(make([]byte, 4096), maxTxState)
	for n := 2; sc.Scan(); n++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "  "); ok {
			if entry == nil {
				return nil, badTxLine(n, line, "entry text outside an entry")
			}
			entry.Raw = append(entry.Raw, rest+"\n"...)
			continue
		}
		if entry != nil {
			*section = append(*section, *entry)
			entry = nil
		}
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "id":
			if s.ID != "" || val == "" {
				return nil, badTxLine(n, line, "want one id")
			}
			s.ID = val
		case "ran":
			if val == "" {
				return nil, badTxLine(n, line, "want a step")
			}
			s.Ran = append(s.Ran, val)
		case "snapshot":
			if s.SnapshotBy != "" || val == "" {
				return nil, badTxLine(n, line, "want one snapshot")
			}
			s.SnapshotBy = val
			section = &s.Snapshot
		case "early":
			if s.HasEarly || val != "" || s.SnapshotBy != "" {
				return nil, badTxLine(n, line, "want one early section, before the snapshot")
			}
			s.HasEarly = true
			section = &s.Early
		case "entry":
			name, ino, _ := strings.Cut(val, " ")
			inode, err := strconv.ParseUint(ino, 10, 64)
			if section == nil || name == "" || strings.Contains(name, "/") || err != nil {
				return nil, badTxLine(n, line, "want entry NAME INODE after snapshot or early")
			}
			entry = &RawEntry{Name: name, Ino: inode}
		case "file":
			if !strings.HasPrefix(val, "/") {
				return nil, badTxLine(n, line, "want an absolute path")
			}
			s.Leaving = append(s.Leaving, LeavingFile{Path: val})
			file = &s.Leaving[len(s.Leaving)-1]
			seen = false
		case "seen":
			if !strings.HasPrefix(val, "/") {
				return nil, badTxLine(n, line, "want an absolute path")
			}
			s.Seen = append(s.Seen, LeavingFile{Path: val})
			file = &s.Seen[len(s.Seen)-1]
			seen = true
		case "owner":
			name, kind, ok := strings.Cut(val, " ")
			if file == nil || seen || !ok || ValidPackage(name) != nil || kind != "hooks" && kind != "plain" {
				return nil, badTxLine(n, line, "want owner PACKAGE hooks|plain after a file")
			}
			file.Owners = append(file.Owners, Owner{Name: name, Hooks: kind == "hooks"})
		case "line":
			if file == nil {
				return nil, badTxLine(n, line, "line outside a file")
			}
			file.Lines = append(file.Lines, val)
		default:
			return nil, badTxLine(n, line, "unknown item")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errorf("%w: %v", ErrBadTxState, err)
	}
	if entry != nil {
		*section = append(*section, *entry)
	}
	if s.ID == "" {
		return nil, errorf("%w: no id", ErrBadTxState)
	}
	return s, nil
}

// badTxLine is the error about line n of a transaction file, out of line
// so that ParseTxState's many cases do not each carry the formatting.
//
//go:noinline
func badTxLine(n int, line, why string) error {
	return errorf("%w: line %d %q: %s", ErrBadTxState, n, line, why)
}

// maxTxState bounds the state file: a snapshot of a full table (the
// kernel holds a few hundred entries at most in practice) and the lines of
// the leaving files.
const maxTxState = 1 << 20

// TxStore keeps the transaction state in Dir, with the same care as the
// record: a root-owned directory, no symlinks followed, atomic writes.
type TxStore struct {
	Dir string
}

// Load returns the state of transaction id: the stored one if it is of
// that transaction, or a fresh one. A stale or damaged state is replaced.
func (t TxStore) Load(id string) (*TxState, error) {
	fresh := &TxState{ID: id}
	if err := checkDir(t.Dir); errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	} else if err != nil {
		return nil, err
	}
	data, err := readNoFollow(joinPath(t.Dir, txFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := ParseTxState(data)
	if err != nil || s.ID != id {
		return fresh, nil
	}
	return s, nil
}

// Save writes s, atomically (a rename) but without fsync: the state means
// nothing after a crash of the system, which empties /run, and where /run
// is kept Load replaces a damaged or stale state with a fresh one. Each
// step saves it once; two fsyncs each cost more wall time than the rest of
// the step where /run is on a disk.
func (t TxStore) Save(s *TxState) error {
	if err := os.MkdirAll(filepath.Dir(t.Dir), 0o755); err != nil {
		return errorf("creating %q: %w", filepath.Dir(t.Dir), err)
	}
	if err := unix.Mkdir(t.Dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return errorf("creating %q: %w", t.Dir, err)
	}
	if err := checkDir(t.Dir); err != nil {
		return err
	}
	return writeAtomic(t.Dir, txFile, s.Render(), false)
}

// TxID identifies the transaction run by the process pid (the rpm or dnf
// process, the scriptlet shell's $PPID): its pid and its start time, so
// that a later process with the same pid is another transaction.
func TxID(procDir string, pid int) (string, error) {
	if pid <= 1 {
		return "", errorf("transaction process %d: want the pid of rpm (the trigger shell's $PPID)", pid)
	}
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", errorf("reading the start time of the transaction process %d: %w", pid, err)
	}
	// The command name is in parentheses and may hold anything; the
	// start time is the 22nd field, the 20th after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", errorf("reading the start time of process %d: no command name in %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", errorf("reading the start time of process %d: %d fields after the command name", pid, len(f))
	}
	return strconv.Itoa(pid) + " " + f[19], nil
}
