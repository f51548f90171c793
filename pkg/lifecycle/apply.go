package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Converge makes the kernel and the records agree with the package pkg
// shipping files (nil when it is erased): Apply with the package's
// files, repinning when repin is true, adopting exact matches.
func (m *Manager) Converge(pkg string, files []string, repin bool) error {
	return m.apply(Change{Package: pkg, Files: files, Repin: repin, Adopt: true}, nil)
}

// Apply reads the kernel table, every binfmt.d file systemd's lookup
// considers and every record, asks rpm who owns the files that matter,
// decides with Plan, and applies the plan under the lock: the one path
// hooks, sync and file triggers take.
//
// The records are written twice, each time atomically: before the
// kernel writes, with the claims to be made added to the old ones (the
// intent), and after, with what is now true. A crash at any point
// leaves records that claim everything that may be live, so a rerun
// converges. Change.Adopt is turned off when the table is that of a
// system outside the root (see outerTable).
func (m *Manager) Apply(ch Change) error { return m.apply(ch, nil) }

// apply is Apply that, when the package's record is damaged or empty,
// also counts the binfmt.d files among manifest() (nil: none) as the
// package's, so that an erase adopts and removes the live entries they
// define exactly. Only then is the manifest asked for: the rpm query is
// the dearest part of a hook, and a sound record alone decides.
func (m *Manager) apply(ch Change, manifest func() []string) error {
	pkg := ch.Package
	if pkg != "" {
		if err := ValidPackage(pkg); err != nil {
			return err
		}
	}
	erasing := ch.Files == nil
	unlock, err := m.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()

	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return m.unavailable(pkg, err, erasing)
	}
	snap, damaged, lineErrs, err := m.snapshot(fs, ch)
	if err != nil {
		return m.failed(pkg, err, erasing)
	}
	if ch.Adopt && outerTable(m.BinfmtDir) {
		// The table is the host's, seen through its /proc: what no
		// record here claims is the host's.
		ch.Adopt = false
	}
	var extra []string
	if manifest != nil && (damaged[pkg] || len(snap.Claims[pkg]) == 0) {
		for _, f := range manifest() {
			if isConfPath(f) {
				extra = append(extra, filepath.Clean(f))
			}
		}
	}
	if m.RPM != nil && pkg != "" {
		if paths := dedupe(append(NeedOwners(snap, ch), extra...)); len(paths) > 0 {
			owners, err := m.RPM.Owners(paths)
			if err != nil {
				m.notice("%v; the record of %s decides", err, pkg)
				snap.OwnersFailed = true
			}
			snap.Owners = owners
		}
	}
	res := Plan(snap, ch)
	for _, n := range res.Notices {
		m.notice("%s", n)
	}
	for _, st := range res.Steps {
		if st.Notice {
			m.notice("%s", st.Reason)
		}
	}

	// onDisk is each record's bytes as read, nil when it was not read
	// whole. A save that would write the same bytes again is skipped:
	// each costs two fsyncs in the middle of a transaction.
	onDisk := map[string][]byte{}
	for p, c := range snap.Claims {
		if !damaged[p] {
			onDisk[p] = c.Render()
		}
	}
	save := func(p string, c Claims) error {
		rendered := c.Render()
		if len(c) > 0 && onDisk[p] != nil && bytes.Equal(rendered, onDisk[p]) {
			return nil
		}
		if err := m.Store.Save(p, c); err != nil {
			onDisk[p] = nil
			return err
		}
		onDisk[p] = rendered
		return nil
	}
	// The records to write: the plan's, and the package's own when it
	// was damaged, so that it is rebuilt. Another package's damaged
	// record is left for that package's hooks.
	final := map[string]Claims{}
	for p, c := range res.Records {
		if p == pkg || !damaged[p] {
			final[p] = c
		}
	}
	if pkg != "" {
		// Always the package's own: a damaged record is rebuilt, and an
		// empty one removed with the state directory once it is empty.
		if _, ok := final[pkg]; !ok {
			final[pkg] = snap.Claims[pkg].Clone()
			if final[pkg] == nil {
				final[pkg] = Claims{}
			}
		}
	}
	owners := sortedKeys(final)

	crashPoint("before-intent")
	registers := false
	for _, st := range res.Steps {
		registers = registers || st.Action == Register || st.Action == Replace
	}
	if registers {
		for _, p := range owners {
			intent := snap.Claims[p].Clone()
			if intent == nil {
				intent = Claims{}
			}
			for _, n := range final[p].Names() {
				for _, e := range final[p][n] {
					intent.Add(e)
				}
			}
			if err := save(p, intent); err != nil {
				return err
			}
		}
	}
	crashPoint("after-intent")

	// unsure holds the names whose step did not happen as planned; their
	// claims are settled by what is live afterwards.
	unsure := map[string]bool{}
	var failed []error
	var stop error
	for i, st := range res.Steps {
		if st.Action == Leave {
			continue
		}
		err := m.step(fs, pkg, st)
		if isUnavailable(err) {
			// binfmt_misc turned out read-only or refusing writes:
			// nothing more is written, and each record claims what
			// was claimed before and what did get registered.
			for _, rest := range res.Steps[i:] {
				unsure[rest.Name] = true
			}
			stop = err
			break
		}
		if err != nil {
			unsure[st.Name] = true
			failed = append(failed, err)
		}
	}
	if len(unsure) > 0 {
		for _, p := range owners {
			for n := range unsure {
				settle(fs, final[p], snap.Claims[p], n)
			}
		}
	}
	if stop != nil {
		for _, p := range owners {
			if pkg != "" && p == pkg {
				// Saved even when unchanged, so that a caller who may
				// not write the record (not root) is told so.
				onDisk[p] = nil
			}
			if err := save(p, final[p]); err != nil {
				return err
			}
		}
		return m.unavailable(pkg, stop, erasing)
	}
	crashPoint("before-final")
	for _, p := range owners {
		if err := save(p, final[p]); err != nil {
			return err
		}
	}
	crashPoint("after-final")
	if err := errors.Join(append(res.Errors, failed...)...); err != nil {
		return err
	}
	return lineErrs
}

// settle sets the claims on name in c to those of old and of c that the
// live entry matches: after a step that failed or did not run, a record
// claims what is live, and nothing that is not.
func settle(fs *binfmt.FS, c, old Claims, name string) {
	if c == nil {
		return
	}
	cands := append(append([]binfmt.Entry(nil), old[name]...), c[name]...)
	delete(c, name)
	live, err := fs.Entry(name)
	if err != nil {
		if !errors.Is(err, binfmt.ErrNotFound) {
			// Unknown: keep every claim that may be live.
			for _, e := range cands {
				c.Add(e)
			}
		}
		return
	}
	for _, e := range cands {
		if live.Matches(e) {
			c.Add(e)
		}
	}
}

// step applies one step to the kernel.
func (m *Manager) step(fs *binfmt.FS, pkg string, st Step) error {
	switch st.Action {
	case Register, Replace:
		if st.Action == Replace {
			if err := fs.Unregister(st.Name); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
				return err
			}
			crashPoint("after-unregister")
		}
		if err := fs.RegisterString(st.Name, st.Def.RegisterLine()); err != nil {
			return errorf("%s: %w", st.Def, err)
		}
		crashPoint("after-register")
	case Unregister:
		// Remove it only while it is what the plan saw.
		live, err := fs.Entry(st.Name)
		switch {
		case errors.Is(err, binfmt.ErrNotFound):
			return nil
		case err != nil:
			return err
		case st.Live == nil || !live.Matches(st.Live.Entry):
			m.notice("entry %q was replaced by someone else since %s registered it; leaving it alone", st.Name, pkg)
			return nil
		}
		if err := fs.Unregister(st.Name); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
			return err
		}
		crashPoint("after-unregister")
	}
	return nil
}

// snapshot reads what Plan decides from. damaged names the packages
// whose record did not read back whole; lineErrs are the lines of the
// package's own files that do not parse, each named in a notice.
func (m *Manager) snapshot(fs *binfmt.FS, ch Change) (s Snapshot, damaged map[string]bool, lineErrs error, err error) {
	lives, err := fs.Entries()
	if err != nil {
		return s, nil, nil, err
	}
	s.Live = make(map[string]binfmt.Live, len(lives))
	for _, l := range lives {
		s.Live[l.Name] = l
	}
	var loadErrs map[string][]error
	s.Files, loadErrs = ReadConfFiles(m.Config)
	// Bad lines are skipped, as systemd-binfmt skips them; the good
	// lines are still applied. Those of the package's own files are
	// named, once each.
	var bad []error
	for _, base := range ConfNames(ch.Files, binfmt.ConfigDirs) {
		if cands := s.Files[base]; len(cands) > 0 {
			bad = append(bad, loadErrs[cands[0].Path]...)
		}
	}
	for _, e := range bad {
		m.notice("%v", e)
	}
	if len(bad) > 0 {
		lineErrs = &skippedLines{pkg: ch.Package, errs: bad}
	}

	damaged = map[string]bool{}
	s.Claims = map[string]Claims{}
	pkgs, err := m.Store.Packages()
	if err != nil {
		return s, nil, nil, err
	}
	for _, p := range pkgs {
		if p == ch.Package {
			continue
		}
		c, cerr := m.Store.Claims(p)
		if c == nil {
			continue // unsafe: not trusted at all
		}
		if cerr != nil {
			damaged[p] = true
		}
		s.Claims[p] = c
	}
	if ch.Package != "" {
		c, cerr := m.Store.Claims(ch.Package)
		if c == nil {
			return s, nil, nil, cerr
		}
		if cerr != nil {
			m.notice("%v (ignoring what could not be read)", cerr)
			damaged[ch.Package] = true
		}
		if cerr != nil || len(c) > 0 || recordExists(m.Store, ch.Package) {
			s.Claims[ch.Package] = c
		}
	}
	s.Check = checkDefinition
	// The machine's own programs are sampled once, and only when a
	// definition is about to be registered.
	var native []binfmt.NativeSample
	sampled := false
	s.Refuse = func(l binfmt.Line) error {
		if !sampled {
			native, sampled = binfmt.NativeSamples(), true
		}
		return binfmt.CheckNative(l.Entry, native, "/")
	}
	return s, damaged, lineErrs, nil
}

func recordExists(st Store, pkg string) bool {
	_, err := os.Lstat(filepath.Join(st.Dir, pkg))
	return err == nil
}

// checkDefinition refuses what the kernel must not be given: an
// interpreter the C/O credential check refuses, and an F entry whose
// interpreter does not exist (F opens it when registering; the kernel's
// own error would follow a warning, so say it once, as the error).
func checkDefinition(l binfmt.Line) ([]string, error) {
	warnings, err := binfmt.CheckInterpreter("/", l.Entry)
	if err == nil && l.HasFlag('F') && !l.InterpreterExists("/") {
		return nil, errorf("entry %q: %w: interpreter %q does not exist (flag F opens it when registering)", l.Name, binfmt.ErrInvalid, l.Interpreter)
	}
	return warnings, err
}

// ReadConfFiles reads every binfmt.d file systemd's lookup considers
// under c.Root: for each file name, every candidate in
// binfmt.ConfigDirs order, the shadowed ones included, because one of
// those wins once the winner is removed. Lines that do not parse are
// returned by path.
func ReadConfFiles(c binfmt.Config) (map[string][]ConfFile, map[string][]error) {
	files := map[string][]ConfFile{}
	errs := map[string][]error{}
	for _, dir := range binfmt.ConfigDirs {
		host := dir
		if c.Root != "" && c.Root != "/" {
			host = filepath.Join(c.Root, dir)
		}
		names, err := readDirNames(host)
		if err != nil {
			continue
		}
		for _, n := range names {
			// systemd skips hidden files (hidden_or_backup_file).
			if !strings.HasSuffix(n, ".conf") || strings.HasPrefix(n, ".") {
				continue
			}
			f, err := c.Resolve(filepath.Join(dir, n))
			if err != nil {
				continue // a directory, or gone since it was listed
			}
			lines, lerrs := c.Load(f)
			files[n] = append(files[n], ConfFile{Path: f.Path, Masked: f.Masked, Lines: lines})
			if len(lerrs) > 0 {
				errs[f.Path] = lerrs
			}
		}
	}
	return files, errs
}

func isConfPath(p string) bool {
	p = filepath.Clean(p)
	if !strings.HasSuffix(p, ".conf") {
		return false
	}
	for _, d := range binfmt.ConfigDirs {
		if filepath.Dir(p) == d {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]Claims) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

// outerTable reports whether the binfmt_misc table at dir is the one of
// a system outside this process's root: rpm --root or dnf --installroot
// chrooted the scriptlet, and the host's /proc, mounted into the root,
// shows the host's table. It walks up the parents (binfmtctl, the
// scriptlet's shell, rpm or dnf, which chroot themselves during the
// transaction) to the first one with another root directory, and
// compares the binfmt_misc it sees with ours. Anything it cannot read
// (a parent in another user namespace) answers false: the table is
// then taken to be the root's own, as before.
func outerTable(dir string) bool {
	var self, table unix.Stat_t
	if unix.Stat("/", &self) != nil || unix.Stat(dir, &table) != nil {
		return false
	}
	pid := os.Getppid()
	for i := 0; i < 8 && pid > 1; i++ {
		var root unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(pid)+"/root/", &root) != nil {
			return false
		}
		if root.Dev != self.Dev || root.Ino != self.Ino {
			// stat does not trigger an automount (Linux ≥ 4.14), so
			// this never mounts the host's binfmt_misc.
			var outer unix.Stat_t
			if unix.Stat("/proc/"+strconv.Itoa(pid)+"/root"+binfmt.DefaultDir, &outer) != nil {
				return false
			}
			return outer.Dev == table.Dev
		}
		pid = parentOf(pid)
	}
	return false
}

// parentOf returns the parent of pid from /proc/PID/stat, or 0.
func parentOf(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

// skippedLines is returned when lines that do not parse were skipped.
// Each was named in a notice already, so the message only counts them;
// errors.As still finds every *binfmt.LineError.
type skippedLines struct {
	pkg  string
	errs []error
}

func (s *skippedLines) Error() string {
	return fmt.Sprintf("%s: skipped %d binfmt.d lines that do not parse", s.pkg, len(s.errs))
}

func (s *skippedLines) Unwrap() []error { return s.errs }
