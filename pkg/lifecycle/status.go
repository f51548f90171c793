package lifecycle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

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
	ReplacedFrom string    `json:"replaced_from,omitempty"`
	Source       string    `json:"source,omitempty"`
	Registered   time.Time `json:"registered"`
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
	sources := m.sources()
	for _, l := range lives {
		r.Entries = append(r.Entries, m.describe(fs, l, owners, sources))
	}
	m.fileOwners(r.Entries, lives)
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
	return out, errors.Join(append(errs, err)...)
}

// sources maps entry names to the binfmt.d file that defines them now.
func (m *Manager) sources() map[string]string {
	out := map[string]string{}
	files, err := m.Config.Files()
	if err != nil {
		return out
	}
	for _, f := range files {
		lines, _ := m.Config.Load(f)
		for _, l := range lines {
			out[l.Name] = f.Path
		}
	}
	return out
}

func (m *Manager) describe(fs *binfmt.FS, l binfmt.Live, owners map[string]Claims, sources map[string]string) EntryStatus {
	s := EntryStatus{
		Name:              l.Name,
		Enabled:           l.Enabled,
		Interpreter:       l.Interpreter,
		InterpreterExists: l.InterpreterExists("/"),
		Flags:             l.Flags,
		Source:            sources[l.Name],
	}
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
	if fi, err := os.Stat(filepath.Join(fs.Dir, l.Name)); err == nil {
		s.Registered = fi.ModTime().UTC()
		s.StalePin = l.HasFlag('F') && replacedSince(l.Interpreter, fi.ModTime())
	}
	return s
}

// replacedSince reports whether the file at p was created or changed
// after t. The kernel stamps an entry's file with its registration time,
// and rpm installs a file by renaming a new inode into place, whose ctime
// is then later than the registration of an entry that pinned the old
// inode.
func replacedSince(p string, t time.Time) bool {
	fi, err := os.Stat(p)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	ctime := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	return ctime.After(t)
}

// Finding is an entry prune would remove, and why.
type Finding struct {
	Entry   EntryStatus `json:"entry"`
	Reasons []string    `json:"reasons"`
	Removed bool        `json:"removed"`
	Error   string      `json:"error,omitempty"`
}

// Prune finds entries left behind by packages that never unregistered
// them: the interpreter is gone, an F entry pins a replaced interpreter,
// or neither a binfmt.d file nor a record defines the entry. With apply,
// each is unregistered, unless it changed since it was read.
func (m *Manager) Prune(apply bool) ([]Finding, error) {
	r, err := m.Status()
	if err != nil {
		return nil, err
	}
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return nil, err
	}
	var unlock func()
	if apply {
		if unlock, err = m.Store.Lock(); err != nil {
			return nil, err
		}
		defer unlock()
	}
	var out []Finding
	var failed []error
	for _, e := range r.Entries {
		var reasons []string
		if !e.InterpreterExists {
			reasons = append(reasons, fmt.Sprintf("interpreter %s does not exist", e.Interpreter))
		} else if e.StalePin {
			reasons = append(reasons, fmt.Sprintf("flag F pins a file that %s has replaced since the entry was registered", e.Interpreter))
		}
		if e.Source == "" && e.Owner == "" {
			reasons = append(reasons, "no binfmt.d file and no record defines it")
		}
		if len(reasons) == 0 {
			continue
		}
		f := Finding{Entry: e, Reasons: reasons}
		if apply {
			if err := m.pruneOne(fs, e); err != nil {
				f.Error = err.Error()
				failed = append(failed, err)
			} else {
				f.Removed = true
			}
		}
		out = append(out, f)
	}
	return out, errors.Join(failed...)
}

func (m *Manager) pruneOne(fs *binfmt.FS, e EntryStatus) error {
	// Remove the entry only if it is still the one that was judged.
	live, err := fs.Entry(e.Name)
	if err != nil {
		return err
	}
	if live.Interpreter != e.Interpreter || live.Flags != e.Flags {
		return fmt.Errorf("pruning %q: it changed while it was examined; leaving it", e.Name)
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
