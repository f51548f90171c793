package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Trigger steps: each is one of the helper's rpm file triggers, which
// every package that ships the helper carries (docs/lifecycle.md, "File
// triggers"). The order rpm runs them in was verified on rpm 4.18
// (pkg/e2e TestTriggerOrder*).
const (
	// StepLeaving is %transfiletriggerun: before the transaction, with
	// every binfmt.d file that will be removed or replaced on standard
	// input, while they all still exist. It records what they define.
	StepLeaving = "leaving"
	// StepGone is %filetriggerpostun, once per package whose binfmt.d
	// files were removed, with those files (now gone) on standard input.
	// It unregisters what they defined for packages that never call the
	// hooks.
	StepGone = "gone"
	// StepEarly is %filetriggerin, once per package that installs
	// binfmt.d files, before that package's %post: it keeps the table as
	// it was then, for when systemd's trigger runs before guard-before.
	// rpm 4.18 runs the transaction triggers of packages installed by
	// the transaction after those of packages installed before it,
	// whatever their priorities: on the helper's first install, and in
	// the transaction that upgrades it, systemd's runs first.
	StepEarly = "early"
	// StepGuardBefore is %transfiletriggerin at priority 1000701, just
	// before systemd's binfmt trigger (1000700): it snapshots the table.
	StepGuardBefore = "guard-before"
	// StepGuardAfter is %transfiletriggerin at priority 1000699, just
	// after systemd's: it puts back what systemd-binfmt flushed and no
	// file registered again, then registers (or registers again) the
	// entries of installed packages that never call the hooks, where
	// systemd's trigger does not run.
	StepGuardAfter = "guard-after"
)

// SystemdBooted is the directory whose existence makes systemd's binfmt
// trigger run systemd-binfmt (systemd's src/rpm/triggers.systemd.in).
const SystemdBooted = "/run/systemd/system"

// Trigger runs one trigger step of the transaction tx (TxID) with the
// files rpm gave the trigger on standard input.
func (m *Manager) Trigger(step, tx string, files []string) error {
	files = binfmtFiles(files)
	unlock, err := m.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	ts := m.txStore()
	st, err := ts.Load(tx)
	if err != nil {
		return fmt.Errorf("trigger %s: %w", step, err)
	}
	key := step
	if step == StepGone && len(files) > 0 {
		// Once per package: rpm runs this step for each one.
		key += " " + files[0]
	}
	if step != StepEarly && st.HasRun(key) {
		// The other package that ships the helper carries the same
		// trigger, and it already ran in this transaction.
		return nil
	}
	var runErr error
	switch step {
	case StepLeaving:
		runErr = m.leaving(st, files)
	case StepGone:
		runErr = m.gone(st, files)
	case StepEarly:
		runErr = m.early(st)
		key = "" // every time: the latest state before a %post
	case StepGuardBefore:
		runErr = m.guardBefore(st)
	case StepGuardAfter:
		runErr = m.guardAfter(st, files)
	default:
		return fmt.Errorf("unknown trigger step %q, want %s, %s, %s, %s or %s", step, StepLeaving, StepGone, StepEarly, StepGuardBefore, StepGuardAfter)
	}
	if key != "" {
		st.Ran = append(st.Ran, key)
	}
	if err := ts.Save(st); err != nil {
		return errors.Join(runErr, fmt.Errorf("trigger %s: %w", step, err))
	}
	return runErr
}

func (m *Manager) txStore() TxStore {
	return TxStore{Dir: filepath.Join(m.Config.Root, DefaultTxDir)}
}

// binfmtFiles keeps the *.conf paths directly in a binfmt.d directory:
// rpm also lists the directories themselves when a package owns them.
func binfmtFiles(files []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range files {
		f = filepath.Clean(strings.TrimSpace(f))
		if len(ConfNames([]string{f}, binfmt.ConfigDirs)) == 1 && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func (m *Manager) owners(files []string) map[string][]Owner {
	q, ok := m.RPM.(OwnerQuerier)
	if !ok || len(files) == 0 {
		return map[string][]Owner{}
	}
	o, err := q.Owners(files)
	if err != nil {
		m.notice("%v; leaving the entries of %s alone", err, strings.Join(files, ", "))
		return map[string][]Owner{}
	}
	return o
}

// leaving records what each leaving file defines and who owns it.
func (m *Manager) leaving(st *TxState, files []string) error {
	owners := m.owners(files)
	for _, f := range files {
		lf := LeavingFile{Path: f, Owners: owners[f]}
		lines, _ := binfmt.ParseFile(m.Config.Root + f)
		for _, l := range lines {
			lf.Lines = append(lf.Lines, l.Raw)
		}
		st.Leaving = append(st.Leaving, lf)
	}
	return nil
}

// gone unregisters, for packages that never call the hooks, what their
// removed files defined.
func (m *Manager) gone(st *TxState, files []string) error {
	in, err := m.cleanupInput(st, nil, files)
	if err != nil || in.fs == nil {
		return err
	}
	return m.apply(in.fs, PlanCleanup(in.CleanupInput))
}

// early keeps the table as it is now, before a package's %post.
func (m *Manager) early(st *TxState) error {
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return nil
	}
	es, err := m.table(fs)
	if err != nil {
		return err
	}
	st.Early, st.HasEarly = es, true
	return nil
}

// guardBefore takes the snapshot. When guard-after already ran (rpm ran
// the triggers against their priorities, after systemd's flush), it puts
// back what guard-after's snapshot holds instead. When the table was
// flushed since the early snapshot (systemd's trigger ran first, as it
// does when the helper is installed or upgraded by this transaction, or
// a scriptlet restarted systemd-binfmt.service), it puts back from the
// early snapshot first.
func (m *Manager) guardBefore(st *TxState) error {
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return nil // nothing to guard; the hooks and sync say why
	}
	if st.HasRun(StepGuardAfter) {
		m.notice("rpm ran the file trigger at priority 1000701 after the one at 1000699, against their priorities: putting back what systemd-binfmt flushed from the snapshot taken at 1000699")
		return m.restore(fs, st.Snapshot, st)
	}
	now, err := m.table(fs)
	if err != nil {
		return err
	}
	if st.HasEarly {
		disk, _ := m.onDisk()
		if Flushed(st.Early, now, disk, leavingDefs(st.Leaving)) {
			if err := m.restore(fs, st.Early, st); err != nil {
				return err
			}
		}
	}
	return m.snapshot(fs, st, StepGuardBefore)
}

// Flushed reports whether the table was flushed between the snapshot
// before and the table now: an entry that no binfmt.d file defines, on
// disk or leaving, is gone or was registered again (its entry file is a
// new inode). Nothing in a transaction removes such an entry but a flush
// (systemd-binfmt, or a restart of systemd-binfmt.service); the hooks and
// the cleanup only touch entries that files define. A table with only
// file-defined entries loses nothing to a flush that systemd-binfmt does
// not register again, so there is nothing to detect.
func Flushed(before, now []RawEntry, onDisk map[string]binfmt.Line, leaving []binfmt.Entry) bool {
	nowIno := map[string]uint64{}
	for _, e := range now {
		nowIno[e.Name] = e.Ino
	}
	left := map[string]bool{}
	for _, l := range leaving {
		left[l.Name] = true
	}
	for _, e := range before {
		if _, ok := onDisk[e.Name]; ok || left[e.Name] {
			continue
		}
		if ino, ok := nowIno[e.Name]; !ok || ino != e.Ino {
			return true
		}
	}
	return false
}

// guardAfter puts back what systemd-binfmt flushed, then does the
// install and upgrade part of the cleanup.
func (m *Manager) guardAfter(st *TxState, files []string) error {
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		if len(m.plainFiles(st, files)) > 0 {
			m.notice("%v; binfmt entries of %s left to systemd-binfmt at the next boot", err, strings.Join(files, ", "))
		}
		return nil
	}
	var errs []error
	if st.HasRun(StepGuardBefore) {
		errs = append(errs, m.restore(fs, st.Snapshot, st))
	} else {
		// Against the priorities: systemd's trigger may not have run
		// yet. Snapshot now; guard-before, when it runs, puts back.
		m.notice("rpm ran the file trigger at priority 1000699 before the one at 1000701, against their priorities: taking the snapshot now, to put back after systemd-binfmt")
		errs = append(errs, m.snapshot(fs, st, StepGuardAfter))
	}
	in, err := m.cleanupInput(st, files, nil)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, m.apply(fs, PlanCleanup(in.CleanupInput)))
	return errors.Join(errs...)
}

func (m *Manager) snapshot(fs *binfmt.FS, st *TxState, by string) error {
	es, err := m.table(fs)
	if err != nil {
		return err
	}
	st.SnapshotBy, st.Snapshot = by, es
	return nil
}

// table reads every live entry with its inode number, most recently
// registered first, as the kernel lists them.
func (m *Manager) table(fs *binfmt.FS) ([]RawEntry, error) {
	names, err := fs.Names()
	if err != nil {
		return nil, err
	}
	var out []RawEntry
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(fs.Dir, n), &st); err != nil {
			continue
		}
		raw, err := fs.Raw(n)
		if err == nil {
			out = append(out, RawEntry{Name: n, Ino: st.Ino, Raw: raw})
		}
	}
	return out, nil
}

// restore puts back the entries of snapshot that PlanRestore selects,
// oldest registration first, so that the kernel tries them in the order
// it did before.
func (m *Manager) restore(fs *binfmt.FS, snapshot []RawEntry, st *TxState) error {
	live, err := liveRaw(fs)
	if err != nil {
		return err
	}
	disk, _ := m.onDisk()
	rev := make([]RawEntry, len(snapshot))
	for i, e := range snapshot {
		rev[len(snapshot)-1-i] = e
	}
	plan := PlanRestore(rev, live, disk, leavingDefs(st.Leaving))
	for _, s := range plan.Skipped {
		m.notice("%s", s)
	}
	for _, r := range plan.Restore {
		if err := putBack(fs, r); err != nil {
			// One line each: the entry is lost, and the user must know
			// which one. Not an error of the transaction.
			m.notice("entry %q was flushed by systemd-binfmt and cannot be registered again: %v", r.Name, err)
		}
	}
	return nil
}

// putBack registers the entry the raw entry file shows, disabled when it
// was, and checks that the kernel shows it byte for byte again.
func putBack(fs *binfmt.FS, r RawEntry) error {
	l, err := binfmt.ParseLive(r.Name, r.Raw)
	if err != nil {
		return err
	}
	if l.HasFlag('F') && !l.InterpreterExists("/") {
		return fmt.Errorf("flag F opens the interpreter %s when registering, and it no longer exists", l.Interpreter)
	}
	if err := fs.RegisterString(r.Name, l.RegisterString()); err != nil {
		return err
	}
	if !l.Enabled {
		if err := fs.Disable(r.Name); err != nil {
			return err
		}
	}
	now, err := fs.Raw(r.Name)
	if err != nil {
		return err
	}
	if string(now) != string(r.Raw) {
		return fmt.Errorf("registered again, but the kernel shows %q instead of %q", now, r.Raw)
	}
	return nil
}

func liveRaw(fs *binfmt.FS) (map[string][]byte, error) {
	names, err := fs.Names()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		if raw, err := fs.Raw(n); err == nil {
			out[n] = raw
		}
	}
	return out, nil
}

// onDisk returns what the binfmt.d files on disk define now, as
// systemd-binfmt would apply them: files in name order, a later
// definition of a name replacing an earlier one.
func (m *Manager) onDisk() (map[string]binfmt.Line, error) {
	out := map[string]binfmt.Line{}
	files, err := m.Config.Files()
	if err != nil {
		return out, err
	}
	for _, f := range files {
		lines, _ := m.Config.Load(f)
		for _, l := range lines {
			out[l.Name] = l
		}
	}
	return out, nil
}

func leavingDefs(files []LeavingFile) []binfmt.Entry {
	var out []binfmt.Entry
	for _, f := range files {
		for _, raw := range f.Lines {
			if e, err := binfmt.ParseLine(raw); err == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// RestorePlan is what the guard puts back, and what it says about what it
// does not.
type RestorePlan struct {
	Restore []RawEntry
	Skipped []string
}

// PlanRestore decides which snapshot entries to put back after
// systemd-binfmt's flush: those no longer live under their name (a
// binfmt.d file that registered the name again wins, as at boot), except
// those defined by a binfmt.d file that this transaction removed or
// replaced and that no file on disk defines the same way now: removing
// them was the point of the transaction.
func PlanRestore(snapshot []RawEntry, live map[string][]byte, onDisk map[string]binfmt.Line, leaving []binfmt.Entry) RestorePlan {
	var p RestorePlan
	for _, s := range snapshot {
		if _, ok := live[s.Name]; ok {
			continue
		}
		l, err := binfmt.ParseLive(s.Name, s.Raw)
		if err != nil {
			p.Skipped = append(p.Skipped, fmt.Sprintf("entry %q was flushed and cannot be put back: %v", s.Name, err))
			continue
		}
		if d, ok := onDisk[s.Name]; ok && l.Matches(d.Entry) {
			// A file defines exactly it, and still it is not live: put
			// it back as the file and the snapshot agree.
			p.Restore = append(p.Restore, s)
			continue
		}
		if definedBy(l, leaving) {
			continue
		}
		p.Restore = append(p.Restore, s)
	}
	return p
}

func definedBy(l binfmt.Live, defs []binfmt.Entry) bool {
	for _, d := range defs {
		if l.Matches(d) {
			return true
		}
	}
	return false
}

// Op is one write the cleanup plans.
type Op struct {
	// Kind is "register", "repin" (unregister and register the same
	// definition, so that F pins the file now on disk), "replace"
	// (unregister and register another definition) or "unregister".
	Kind string
	Name string
	// Line is what to register; empty for unregister.
	Line binfmt.Line
	// Old is the live entry the op expects, for replace, repin and
	// unregister: the op is skipped when the entry changed meanwhile.
	Old *binfmt.Live
	Why string
}

// CleanupInput is what PlanCleanup decides from.
type CleanupInput struct {
	// Installed are binfmt.d files this transaction installed or
	// replaced (guard-after's standard input), Removed those it removed
	// (gone's), each with what it defines: Installed as the lookup
	// resolves its name now, Removed as it was (from leaving).
	Installed, Removed []FileDefs
	// Leaving maps a path to what it defined before the transaction.
	Leaving map[string][]binfmt.Entry
	Live    map[string]binfmt.Live
	OnDisk  map[string]binfmt.Line
	// SystemdRuns is true when systemd's binfmt trigger runs
	// systemd-binfmt in this transaction (/run/systemd/system exists):
	// it registers every file's entries then, so the cleanup does not.
	SystemdRuns bool
}

// FileDefs is a binfmt.d file of a package, with its owners.
type FileDefs struct {
	Path   string
	Owners []Owner
	Lines  []binfmt.Line
}

// plain reports whether no owner calls the hooks (and some package owns
// the file: an unowned file is the administrator's).
func (f FileDefs) plain() bool {
	if len(f.Owners) == 0 {
		return false
	}
	for _, o := range f.Owners {
		if o.Hooks {
			return false
		}
	}
	return true
}

// PlanCleanup decides the writes that give a package that never calls
// the hooks the lifecycle of one that does:
//
//   - a removed file's entries are unregistered, while the live entry
//     still matches what the file defined and no file on disk defines
//     the name; where another file on disk defines it differently, its
//     definition replaces the live one, as a boot would;
//   - an installed file's entries are registered where systemd's trigger
//     does not run; on an upgrade (the file was leaving too) an entry
//     that still matches the old or the new definition is registered
//     again, so that F pins the new interpreter file; entries the old
//     version of the file defined and the new one does not go as for a
//     removed file;
//   - anything else under those names is someone else's and is left
//     alone.
//
// Files of packages that call the hooks are left to the hooks.
func PlanCleanup(in CleanupInput) []Op {
	var ops []Op
	planned := map[string]bool{}
	add := func(op Op) {
		if !planned[op.Name] {
			planned[op.Name] = true
			ops = append(ops, op)
		}
	}
	drop := func(old binfmt.Entry, why string) {
		live, ok := in.Live[old.Name]
		if !ok || !live.Matches(old) {
			return
		}
		cur, defined := in.OnDisk[old.Name]
		switch {
		case !defined:
			add(Op{Kind: "unregister", Name: old.Name, Old: &live, Why: why})
		case !binfmt.SameDefinition(cur.Entry, old):
			add(Op{Kind: "replace", Name: old.Name, Line: cur, Old: &live, Why: "defined now by " + cur.File})
		}
	}
	for _, f := range in.Removed {
		if !f.plain() {
			continue
		}
		for _, l := range f.Lines {
			drop(l.Entry, f.Path+" was removed")
		}
	}
	for _, f := range in.Installed {
		if !f.plain() {
			continue
		}
		old, upgraded := in.Leaving[f.Path]
		names := map[string]bool{}
		for _, l := range f.Lines {
			names[l.Name] = true
			if in.SystemdRuns {
				continue
			}
			live, ok := in.Live[l.Name]
			switch {
			case !ok:
				add(Op{Kind: "register", Name: l.Name, Line: l, Why: f.Path + " was installed"})
			case live.Matches(l.Entry) && upgraded:
				add(Op{Kind: "repin", Name: l.Name, Line: l, Old: &live, Why: f.Path + " was upgraded"})
			case live.Matches(l.Entry):
				// Registered already, by the package's own %post or
				// anyone: one mechanism per entry.
			case upgraded && definedBy(live, old):
				add(Op{Kind: "replace", Name: l.Name, Line: l, Old: &live, Why: f.Path + " was upgraded"})
			}
		}
		for _, o := range old {
			if !names[o.Name] {
				drop(o, f.Path+" no longer defines it")
			}
		}
	}
	return ops
}

// plainFiles are the files among files whose recorded owners never call
// the hooks (for the notice when binfmt_misc is missing).
func (m *Manager) plainFiles(st *TxState, files []string) []string {
	var out []string
	for _, f := range files {
		for _, l := range st.Leaving {
			if l.Path == f && (FileDefs{Owners: l.Owners}).plain() {
				out = append(out, f)
			}
		}
	}
	return out
}

type cleanupState struct {
	CleanupInput
	fs *binfmt.FS
}

// cleanupInput gathers what PlanCleanup needs: the installed files'
// owners from rpm, the removed files' from the leaving step's record.
func (m *Manager) cleanupInput(st *TxState, installed, removed []string) (cleanupState, error) {
	var in cleanupState
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		if len(removed) > 0 && len(m.plainFiles(st, removed)) > 0 {
			m.notice("%v; the entries of %s stay until the next reboot", err, strings.Join(removed, ", "))
		}
		return in, nil
	}
	in.fs = fs
	in.Leaving = map[string][]binfmt.Entry{}
	byPath := map[string]LeavingFile{}
	for _, l := range st.Leaving {
		byPath[l.Path] = l
		in.Leaving[l.Path] = leavingDefs([]LeavingFile{l})
	}
	for _, p := range removed {
		l, ok := byPath[p]
		if !ok {
			continue // not recorded before the transaction: not ours to judge
		}
		fd := FileDefs{Path: p, Owners: l.Owners}
		for _, raw := range l.Lines {
			if e, err := binfmt.ParseLine(raw); err == nil {
				fd.Lines = append(fd.Lines, binfmt.Line{Entry: e, File: p, Raw: raw})
			}
		}
		in.Removed = append(in.Removed, fd)
	}
	owners := m.owners(installed)
	for _, p := range installed {
		fd := FileDefs{Path: p, Owners: owners[p]}
		if f, err := m.Config.Lookup(filepath.Base(p)); err == nil && f.Path == p {
			fd.Lines, _ = m.Config.Load(f)
		}
		in.Installed = append(in.Installed, fd)
	}
	lives, err := fs.Entries()
	if err != nil {
		return in, err
	}
	in.Live = map[string]binfmt.Live{}
	for _, l := range lives {
		in.Live[l.Name] = l
	}
	in.OnDisk, _ = m.onDisk()
	_, err = os.Stat(filepath.Join(m.Config.Root, SystemdBooted))
	in.SystemdRuns = err == nil
	return in, nil
}

// apply carries out the cleanup's ops, each only while the live entry is
// still the one it was planned for.
func (m *Manager) apply(fs *binfmt.FS, ops []Op) error {
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Name < ops[j].Name })
	var failed []error
	for _, op := range ops {
		if op.Old != nil {
			now, err := fs.Entry(op.Name)
			if err != nil || !now.Matches(op.Old.Entry) {
				continue
			}
			if err := fs.Unregister(op.Name); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
				failed = append(failed, err)
				continue
			}
		}
		if op.Kind == "unregister" {
			continue
		}
		warnings, err := binfmt.CheckInterpreter("/", op.Line.Entry)
		for _, w := range warnings {
			m.notice("%s: %s", op.Line, w)
		}
		if err == nil {
			err = fs.RegisterString(op.Name, op.Line.RegisterLine())
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", op.Line, err))
		}
	}
	return errors.Join(failed...)
}
