package lifecycle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// EntryStatus describes one live entry for people and for scripts. The
// JSON field names are stable.
type EntryStatus struct {
	Name              string `json:"name"`
	Enabled           bool   `json:"enabled"`
	Type              string `json:"type"` // "magic" or "extension"
	Interpreter       string `json:"interpreter"`
	InterpreterExists bool   `json:"interpreter_exists"`
	// StalePin is true for an F entry registered before its interpreter
	// file was last replaced: the kernel still runs the old file.
	StalePin  bool   `json:"stale_pin"`
	Flags     string `json:"flags"`
	Offset    int    `json:"offset"`
	Magic     string `json:"magic,omitempty"`
	Mask      string `json:"mask,omitempty"`
	Extension string `json:"extension,omitempty"`
	Owner     string `json:"owner"`
	// ReplacedFrom names a package that registered this name but whose
	// definition is no longer the live one.
	ReplacedFrom string `json:"replaced_from,omitempty"`
	// Source is the binfmt.d file whose definition is exactly the live
	// entry, or "" when none is. When several files do, the last in
	// systemd's order, whose write wins at boot.
	Source string `json:"source,omitempty"`
	// DefinedIn lists every binfmt.d file, in systemd's order, that
	// defines an entry of this name, as it defines it or not. Two or
	// more mean the files compete for the name and the last one wins at
	// boot.
	DefinedIn  []string  `json:"defined_in"`
	Registered time.Time `json:"registered"`
}

// InterpreterState says in a word or two what the kernel runs for the
// entry: "present"; "missing" (nothing runs); "replaced" (flag F pins
// an older file than the one at the path now); "pinned, file deleted"
// (flag F pins a file whose path is gone: it still runs programs).
func (e EntryStatus) InterpreterState() string {
	pinned := strings.Contains(e.Flags, "F")
	switch {
	case e.StalePin:
		return "replaced"
	case e.InterpreterExists:
		return "present"
	case pinned:
		return "pinned, file deleted"
	}
	return "missing"
}

// Report is the whole table.
type Report struct {
	BinfmtDir string        `json:"binfmt_dir"`
	Mounted   bool          `json:"mounted"`
	Enabled   bool          `json:"enabled"`
	Entries   []EntryStatus `json:"entries"`
}

// Status reads the live table and adds what only this tool knows: the
// owning package, whether the interpreter exists, whether an F entry
// still pins a replaced file, and the binfmt.d file that defines it.
// With names, only those entries are reported, and a missing one is an
// error wrapping binfmt.ErrNotFound.
func (m *Manager) Status(names ...string) (Report, error) {
	r := Report{BinfmtDir: m.BinfmtDir, Entries: []EntryStatus{}}
	fs, err := binfmt.Open(m.BinfmtDir)
	if errors.Is(err, binfmt.ErrNotMounted) {
		return r, err
	}
	if err != nil {
		return r, err
	}
	r.Mounted = true
	if r.Enabled, err = fs.Status(); err != nil {
		return r, err
	}
	var lives []binfmt.Live
	if len(names) == 0 {
		if lives, err = fs.Entries(); err != nil {
			return r, err
		}
	} else {
		for _, n := range names {
			l, err := fs.Entry(n)
			if err != nil {
				return r, err
			}
			lives = append(lives, l)
		}
	}
	owners, _ := m.allClaims()
	defs := m.definitions()
	for _, l := range lives {
		r.Entries = append(r.Entries, m.describe(fs, l, owners, defs))
	}
	m.fileOwners(r.Entries, lives)
	// By name, for people and diffs; find shows the kernel's order.
	// sort.Slice, not slices.SortFunc: the helper links sort.Slice (and
	// reflectlite's swapper) anyway, and each slices instantiation is
	// its own copy of pdqsort. Entry names are unique in the kernel's
	// table, so the order is the same.
	es := r.Entries
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return r, nil
}

func (m *Manager) allClaims() (map[string]Claims, error) {
	pkgs, err := m.Store.Packages()
	out := map[string]Claims{}
	var errs []error
	for _, p := range pkgs {
		c, cerr := m.Store.Claims(p)
		if cerr != nil {
			errs = append(errs, cerr)
		}
		out[p] = c
	}
	return out, joinErrors(append(errs, err))
}

// definitions maps entry names to the lines of the effective binfmt.d
// files that define them, in systemd's order.
func (m *Manager) definitions() map[string][]binfmt.Line {
	out := map[string][]binfmt.Line{}
	files, err := m.Config.Files()
	if err != nil {
		return out
	}
	for _, f := range files {
		if f.Masked {
			continue
		}
		lines, _ := m.Config.Load(f)
		for _, l := range lines {
			l.File = f.Path
			out[l.Name] = append(out[l.Name], l)
		}
	}
	return out
}

// SourceOf returns the file among defs (the lines defining l's name, in
// systemd's order) whose definition is exactly l, the last one when
// several are, and every file that defines the name, each once.
func SourceOf(l binfmt.Live, defs []binfmt.Line) (source string, definedIn []string) {
	definedIn = []string{}
	for _, d := range defs {
		if !slices.Contains(definedIn, d.File) {
			definedIn = append(definedIn, d.File)
		}
		if l.Matches(d.Entry) {
			source = d.File
		}
	}
	return source, definedIn
}

func (m *Manager) describe(fs *binfmt.FS, l binfmt.Live, owners map[string]Claims, defs map[string][]binfmt.Line) EntryStatus {
	s := EntryStatus{
		Name:              l.Name,
		Enabled:           l.Enabled,
		Interpreter:       l.Interpreter,
		InterpreterExists: l.InterpreterExists("/"),
		Flags:             l.Flags,
	}
	s.Source, s.DefinedIn = SourceOf(l, defs[l.Name])
	if l.Type == binfmt.TypeExtension {
		s.Type, s.Extension = "extension", string(l.Magic)
	} else {
		s.Type, s.Offset, s.Magic, s.Mask = "magic", l.Offset, hex.EncodeToString(l.Magic), hex.EncodeToString(l.Mask)
	}
	for pkg, c := range owners {
		if c.Owns(l) {
			s.Owner = pkg
		} else if _, ok := c[l.Name]; ok {
			s.ReplacedFrom = pkg
		}
	}
	if fi, err := os.Stat(joinPath(fs.Dir, l.Name)); err == nil {
		s.Registered = fi.ModTime().UTC()
		s.StalePin = l.HasFlag('F') && replacedSince(l.Interpreter, fi.ModTime())
	}
	return s
}

// replacedSince reports whether the file at p is a newer file than the
// one an F entry registered at t pins. The kernel stamps an entry's file
// with its registration time, and rpm installs a file by renaming a new
// inode into place, born after the registration of an entry that pinned
// the old one. The birth time decides: chmod, chown or a new hard link
// change only the ctime, and the pinned inode is then still the file at
// the path, which works (prune must not remove it). Only where the file
// system keeps no birth time does the ctime decide.
func replacedSince(p string, t time.Time) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_BTIME|unix.STATX_CTIME, &st); err != nil {
		return false
	}
	ts := st.Ctime
	if st.Mask&unix.STATX_BTIME != 0 {
		ts = st.Btime
	}
	return time.Unix(ts.Sec, int64(ts.Nsec)).After(t)
}

// Owner states of an entry's owning package, for prune.
type OwnerState int

const (
	// NoOwner: no record claims the live entry as it is.
	NoOwner OwnerState = iota
	// OwnerInstalled: the owning package is installed.
	OwnerInstalled
	// OwnerNotInstalled: rpm says the owning package is not installed.
	OwnerNotInstalled
	// OwnerUnknown: rpm could not be asked.
	OwnerUnknown
)

// Verdicts of prune.
const (
	PruneKeep   = "keep"
	PruneRemove = "remove"
	// PruneIfNamed is for an entry pinned with F to a file whose path is
	// gone: it still runs programs, and prune cannot tell a leftover of
	// ours from docker's tonistiigi/binfmt entries, so it goes only when
	// the user names it (prune --apply NAME) or passes --pinned.
	PruneIfNamed = "remove-if-named"
)

// PruneDecision is what prune --apply does with one entry, and why.
type PruneDecision struct {
	Verdict string // PruneKeep, PruneRemove or PruneIfNamed
	// Remove is true when --apply removes the entry with the options
	// given.
	Remove bool
	Reason string
}

// DecidePrune decides what prune --apply does with the live entry e,
// whose owning package is in state owner. named is true when the user
// named the entry; pinned when --pinned was given. It never removes an
// entry whose interpreter exists and that nothing claims: that is
// someone else's working entry.
func DecidePrune(e EntryStatus, owner OwnerState, named, pinned bool) PruneDecision {
	remove := func(format string, args ...any) PruneDecision {
		return PruneDecision{Verdict: PruneRemove, Remove: true, Reason: fmt.Sprintf(format, args...)}
	}
	keep := func(format string, args ...any) PruneDecision {
		return PruneDecision{Verdict: PruneKeep, Reason: fmt.Sprintf(format, args...)}
	}
	switch state := e.InterpreterState(); {
	case e.Owner != "" && owner == OwnerNotInstalled:
		return remove("left behind: the record of %s claims it, and %s is not installed", e.Owner, e.Owner)
	case state == "replaced":
		return remove("flag F pins an older file: %s was replaced since the entry was registered", e.Interpreter)
	case state == "missing":
		return remove("broken: interpreter %s does not exist and flag F does not pin it, so the kernel cannot run it", e.Interpreter)
	case state == "pinned, file deleted":
		d := PruneDecision{Verdict: PruneIfNamed, Remove: named || pinned,
			Reason: fmt.Sprintf("flag F pins a file whose path %s no longer exists: the entry still runs programs", e.Interpreter)}
		switch {
		case named:
			d.Reason += "; removed because it was named"
		case pinned:
			d.Reason += "; removed because of --pinned"
		default:
			d.Reason += fmt.Sprintf(" (docker's entries are such); \"binfmtctl prune --apply %s\" or --pinned removes it", e.Name)
		}
		return d
	case e.Owner != "" && owner == OwnerUnknown:
		return keep("claimed by %s (rpm could not say whether it is installed)", e.Owner)
	case e.Owner != "":
		return keep("in use: claimed by %s, which is installed", e.Owner)
	case e.Source != "":
		return keep("in use: defined by %s", e.Source)
	}
	return keep("unmanaged: interpreter %s exists and nothing claims it; left alone (binfmtctl unregister %s removes it)", e.Interpreter, e.Name)
}

// Finding is one live entry as prune judged it.
type Finding struct {
	Entry EntryStatus `json:"entry"`
	// Action is PruneKeep, PruneRemove or PruneIfNamed.
	Action string `json:"action"`
	// Reasons says why, in one sentence (a list for older readers).
	Reasons []string `json:"reasons"`
	// Removed is true once --apply unregistered it.
	Removed bool   `json:"removed"`
	Error   string `json:"error,omitempty"`
	// remove is whether --apply removes it.
	remove bool
}

// WouldRemove reports whether prune --apply removes the entry.
func (f Finding) WouldRemove() bool { return f.remove }

// PruneOptions are prune's options.
type PruneOptions struct {
	Apply bool
	// Names limits prune to these entries, and lets it remove those
	// pinned with F to a deleted file.
	Names []string
	// Pinned removes every entry pinned with F to a deleted file.
	Pinned bool
}

// Prune judges every live entry with DecidePrune and, with apply,
// unregisters what it decides to remove, unless the entry changed since
// it was read. Entries it keeps are reported too, with the reason.
func (m *Manager) Prune(apply bool) ([]Finding, error) {
	return m.PruneWith(PruneOptions{Apply: apply})
}

// PruneWith is Prune with options.
func (m *Manager) PruneWith(o PruneOptions) ([]Finding, error) {
	r, err := m.Status(o.Names...)
	if err != nil {
		return nil, err
	}
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return nil, err
	}
	var unlock func()
	if o.Apply {
		if unlock, err = m.Store.Lock(); err != nil {
			return nil, err
		}
		defer unlock()
	}
	installed := map[string]OwnerState{}
	ownerState := func(pkg string) OwnerState {
		if pkg == "" {
			return NoOwner
		}
		if st, ok := installed[pkg]; ok {
			return st
		}
		st := OwnerUnknown
		if m.RPM != nil {
			ms, err := m.RPM.Installed(pkg)
			switch {
			case err == nil && len(ms) > 0:
				st = OwnerInstalled
			case err == nil, errors.Is(err, ErrNotInstalled):
				st = OwnerNotInstalled
			}
		}
		installed[pkg] = st
		return st
	}
	out := []Finding{}
	var failed []error
	for _, e := range r.Entries {
		d := DecidePrune(e, ownerState(e.Owner), len(o.Names) > 0, o.Pinned)
		f := Finding{Entry: e, Action: d.Verdict, Reasons: []string{d.Reason}, remove: d.Remove}
		if o.Apply && d.Remove {
			if err := m.pruneOne(fs, e); err != nil {
				f.Error = err.Error()
				failed = append(failed, err)
			} else {
				f.Removed = true
			}
		}
		out = append(out, f)
	}
	return out, joinErrors(failed)
}

func (m *Manager) pruneOne(fs *binfmt.FS, e EntryStatus) error {
	// Remove the entry only if it is still the one that was judged.
	live, err := fs.Entry(e.Name)
	if err != nil {
		return err
	}
	if live.Interpreter != e.Interpreter || live.Flags != e.Flags {
		return errorf("pruning %q: it changed while it was examined; leaving it", e.Name)
	}
	if err := fs.Unregister(e.Name); err != nil {
		return err
	}
	if e.Owner == "" {
		return nil
	}
	claims, err := m.Store.Claims(e.Owner)
	if claims == nil {
		return err
	}
	delete(claims, e.Name)
	return m.Store.Save(e.Owner, claims)
}
