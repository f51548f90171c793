package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// StepRemoving is %filetriggerun, once per package whose binfmt.d
	// files the transaction removes, with exactly those files (not the
	// ones an upgrade replaces) on standard input, while they exist, just
	// before the package's %preun. It unregisters what they define, for
	// packages that never call the hooks.
	StepRemoving = "removing"
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

// EarlyIsBefore, first of guard-after's files, says that guard-before's
// Lua body started no process: the table was exactly as the early step
// of the same rpm process left it (every entry's inode and first line),
// so the early snapshot is the table before systemd's flush. Not a flag
// (the command line takes none after the step) and not a path (rpm's
// files are absolute): a helper older than it drops it with the other
// arguments that are not binfmt.d files. A body older than it never
// passes it, and without it guard-after does as before.
const EarlyIsBefore = "early-is-before"

// SystemdBooted is the directory whose existence makes systemd's binfmt
// trigger run systemd-binfmt (systemd's src/rpm/triggers.systemd.in).
const SystemdBooted = "/run/systemd/system"

// Trigger runs one trigger step of the transaction tx (TxID) with the
// files rpm gave the trigger on standard input.
func (m *Manager) Trigger(step, tx string, files []string) error {
	earlyBefore := step == StepGuardAfter && len(files) > 0 && files[0] == EarlyIsBefore
	if earlyBefore {
		files = files[1:]
	}
	files = binfmtFiles(files)
	switch step {
	case StepLeaving, StepRemoving, StepEarly, StepGuardBefore, StepGuardAfter:
	default:
		return errorf("unknown trigger step %q, want %s, %s, %s, %s or %s", step, StepLeaving, StepRemoving, StepEarly, StepGuardBefore, StepGuardAfter)
	}
	unlock, err := m.Store.Lock()
	if err != nil {
		return err
	}
	ts := m.txStore()
	st, err := ts.Load(tx)
	if err != nil {
		unlock()
		return stepError(step, err)
	}
	key := step
	if step == StepRemoving && len(files) > 0 {
		// Once per package: rpm runs this step for each one.
		key += " " + files[0]
	}
	if step != StepEarly && st.HasRun(key) {
		// The other package that ships the helper carries the same
		// trigger, and it already ran in this transaction.
		unlock()
		return nil
	}
	var errs []error
	switch step {
	case StepLeaving:
		errs = append(errs, m.leaving(st, files))
		if m.systemdRuns() {
			// The table before any scriptlet of the transaction: what
			// a restart of systemd-binfmt.service in one (Fedora's
			// %post) flushes before our erase %preun looks, where rpm
			// 6.1 runs no %filetriggerin of ours (the erase guard).
			errs = append(errs, m.early(st))
		}
	case StepRemoving:
		// A file leaving did not see (it runs only for a helper installed
		// before the transaction) is leaving all the same: the guard must
		// not put back what it defined.
		var unseen []string
		for _, f := range files {
			if _, ok := st.leavingFile(f); !ok {
				unseen = append(unseen, f)
			}
		}
		errs = append(errs, m.leaving(st, unseen))
	case StepEarly:
		m.see(st)
		if m.systemdRuns() {
			errs = append(errs, m.early(st))
		}
	case StepGuardBefore:
		errs = append(errs, m.guardBefore(st))
	case StepGuardAfter:
		if earlyBefore {
			m.earlyAsBefore(st)
		}
		errs = append(errs, m.guardAfter(st, files))
	}
	if step != StepEarly {
		st.Ran = append(st.Ran, key)
	}
	if err := ts.Save(st); err != nil {
		errs = append(errs, stepError(step, err))
	}
	// The cleanup goes through Apply, the path hooks and sync take, which
	// takes the lock itself.
	unlock()
	switch step {
	case StepRemoving:
		errs = append(errs, m.cleanupRemoving(st, files))
	case StepGuardAfter:
		errs = append(errs, m.cleanupVanished(st))
		errs = append(errs, m.cleanupInstalled(st, files))
	}
	return joinErrors(errs)
}

func (m *Manager) txStore() TxStore {
	return TxStore{Dir: joinPath(m.Config.Root, DefaultTxDir)}
}

// joinErrors is errors.Join, called rather than inlined.
//
//go:noinline
func joinErrors(errs []error) error {
	return errors.Join(errs...)
}

// stepError says which trigger step failed.
//
//go:noinline
func stepError(step string, err error) error {
	return errorf("trigger %s: %w", step, err)
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
	if len(files) == 0 {
		return map[string][]Owner{}
	}
	q, ok := m.RPM.(OwnerQuerier)
	if !ok {
		return map[string][]Owner{}
	}
	o, err := q.HookOwners(files)
	if err != nil {
		m.notice("%v; leaving the entries of %s alone", err, strings.Join(files, ", "))
		return map[string][]Owner{}
	}
	return o
}

// AskOwners decides whether a trigger step asks rpm who owns its files:
// an rpm -qf costs more than the rest of the step. defines holds, for
// each file, the entry names it defines; claimed the names some record
// claims; complete is false when a record could not be read whole.
//
// Every file a file trigger passes is a file of a package in the
// transaction, so the answer only tells whether that package calls the
// hooks, and its name, for a record "binfmtctl sync PACKAGE" made. A
// package that calls the hooks has run its %post before guard-after and
// runs its %preun after removing; whatever its hooks registered, its
// record claims. So rpm is asked, once for all the files, only when a
// record claims a name one of them defines (or a record is damaged);
// otherwise each file is taken as a package's that never calls the
// hooks, with no name (docs/lifecycle.md, "Cleanup for packages that
// never call the hooks").
func AskOwners(defines [][]string, claimed map[string]bool, complete bool) bool {
	if !complete {
		return true
	}
	for _, names := range defines {
		for _, n := range names {
			if claimed[n] {
				return true
			}
		}
	}
	return false
}

// nameless is the owner AskOwners assumes when rpm is not asked: a
// package that never calls the hooks, with no name.
var nameless = []Owner{{}}

// hookOwners maps each of files to its owners: rpm's answer when
// AskOwners says to ask (asked), otherwise nameless for every file.
func (m *Manager) hookOwners(files []string) (owners map[string][]Owner, asked bool) {
	if _, ok := m.RPM.(OwnerQuerier); !ok || len(files) == 0 {
		// Without rpm, every file is nobody's: the triggers touch
		// nothing.
		return m.owners(nil), true
	}
	claimed := map[string]bool{}
	pkgs, err := m.Store.Packages()
	complete := err == nil
	for _, p := range pkgs {
		c, err := m.Store.Claims(p)
		complete = complete && err == nil
		for n := range c {
			claimed[n] = true
		}
	}
	defines := make([][]string, len(files))
	for i, f := range files {
		lines, _ := binfmt.ParseFile(m.Config.Root + f)
		for _, l := range lines {
			defines[i] = append(defines[i], l.Name)
		}
	}
	if AskOwners(defines, claimed, complete) {
		return m.owners(files), true
	}
	owners = map[string][]Owner{}
	for _, f := range files {
		owners[f] = nameless
	}
	return owners, false
}

// leaving records what each leaving file defines and who owns it.
// Owners are kept only when rpm was asked (AskOwners); removing decides
// again for the others.
func (m *Manager) leaving(st *TxState, files []string) error {
	owners, asked := m.hookOwners(files)
	for _, f := range files {
		lf := LeavingFile{Path: f}
		if asked {
			lf.Owners = owners[f]
		}
		lines, _ := binfmt.ParseFile(m.Config.Root + f)
		for _, l := range lines {
			lf.Lines = append(lf.Lines, l.Raw)
		}
		st.Leaving = append(st.Leaving, lf)
	}
	return nil
}

// see keeps what the binfmt.d files on disk define, the first time a
// %filetriggerin of the transaction looks: those files may be removed
// later in the transaction without the leaving step having seen them (it
// runs before the transaction, only for a helper already installed).
func (m *Manager) see(st *TxState) {
	files, _ := m.Config.Files()
	for _, f := range files {
		if _, ok := st.seenFile(f.Path); ok {
			continue
		}
		lf := LeavingFile{Path: f.Path}
		lines, _ := m.Config.Load(f)
		for _, l := range lines {
			lf.Lines = append(lf.Lines, l.Raw)
		}
		st.Seen = append(st.Seen, lf)
	}
}

// vanished are the files an early step saw that are no longer on disk
// and that the leaving step did not see: the transaction removed them,
// and only the early step knows what they defined.
func (m *Manager) vanished(st *TxState) []LeavingFile {
	var out []LeavingFile
	for _, f := range st.Seen {
		if _, ok := st.leavingFile(f.Path); ok {
			continue
		}
		var lst unix.Stat_t
		if err := unix.Lstat(m.Config.Root+f.Path, &lst); err == nil {
			continue
		}
		out = append(out, f)
	}
	return out
}

// goneDefs is what the binfmt.d files this transaction removed or
// replaced defined: those the leaving step saw, and those only an early
// step saw.
func (m *Manager) goneDefs(st *TxState) []binfmt.Entry {
	return leavingDefs(append(append([]LeavingFile(nil), st.Leaving...), m.vanished(st)...))
}

// cleanupVanished is the erase of the files that vanished (vanished)
// where systemd's trigger does not run: rpm 6.1 does not run the
// removing step of a helper that the transaction installs for the files
// of a package the same transaction erases after it (dnf's order for a
// swap). Plan with what they defined as replaced and nothing in their
// place: an entry live exactly as they defined it, that no file on disk
// defines, goes; one another file defines differently becomes that
// definition, as at boot. Where systemd's trigger runs it flushed them,
// and the guard does not put them back.
func (m *Manager) cleanupVanished(st *TxState) error {
	if m.systemdRuns() {
		return nil
	}
	gone := m.vanished(st)
	if len(gone) == 0 {
		return nil
	}
	if _, err := binfmt.Open(m.BinfmtDir); err != nil {
		return nil
	}
	var replaced []ConfFile
	for _, old := range gone {
		replaced = append(replaced, confFileOf(old))
	}
	return m.Apply(Change{Files: []string{}, Replaced: replaced, Adopt: true})
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
	st.Early, st.HasEarly = MergeEarly(st.Early, es), true
	return nil
}

// MergeEarly is the early snapshot after another look at the table: the
// table now, and the entries of the earlier look that are gone since. A
// flush between two packages' %post (a scriptlet that restarts
// systemd-binfmt.service) must not make the later look forget what the
// earlier one saw; what the transaction removed on purpose is told apart
// when the snapshot is used (PlanRestore, Flushed).
//
//go:noinline
func MergeEarly(before, now []RawEntry) []RawEntry {
	live := map[string]bool{}
	for _, e := range now {
		live[e.Name] = true
	}
	out := append([]RawEntry(nil), now...)
	for _, e := range before {
		if !live[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// guardBefore takes the snapshot. When guard-after already ran (rpm ran
// the triggers against their priorities, after systemd's flush), it puts
// back what guard-after's snapshot holds instead. When the table was
// flushed since the early snapshot (systemd's trigger ran first, as it
// does when the helper is installed or upgraded by this transaction, or
// a scriptlet restarted systemd-binfmt.service), it puts back from the
// early snapshot first.
func (m *Manager) guardBefore(st *TxState) error {
	if !m.systemdRuns() {
		return nil
	}
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
		if Flushed(st.Early, now, disk, m.goneDefs(st)) {
			if err := m.restore(fs, st.Early, st); err != nil {
				return err
			}
		}
	}
	return m.takeSnapshot(fs, st, StepGuardBefore)
}

// earlyAsBefore takes the early snapshot as guard-before's, for a
// guard-before whose Lua body found the table as early left it and
// started no process (EarlyIsBefore). guard-before would have found it
// not flushed since early and taken the same table; where the early
// snapshot also holds entries of an earlier look gone since, guard-after
// puts them back with the rest, as guard-before would have before its
// snapshot. Without an early snapshot (binfmt_misc was not there then),
// guard-after goes on as when guard-before did not run.
func (m *Manager) earlyAsBefore(st *TxState) {
	if !m.systemdRuns() || !st.HasEarly || st.HasRun(StepGuardBefore) || st.HasRun(StepGuardAfter) {
		return
	}
	st.SnapshotBy, st.Snapshot = StepGuardBefore, st.Early
	st.Ran = append(st.Ran, StepGuardBefore)
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

// guardAfter puts back what systemd-binfmt flushed; cleanupInstalled
// follows.
func (m *Manager) guardAfter(st *TxState, files []string) error {
	if !m.systemdRuns() {
		return nil // nothing flushes here; guard-before does not run either
	}
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return nil
	}
	if st.HasRun(StepGuardBefore) {
		if err := m.restore(fs, st.Snapshot, st); err != nil {
			return err
		}
		return m.flushToCome(fs, st, files)
	}
	// Against the priorities: systemd's trigger may not have run yet.
	// Snapshot now; guard-before, when it runs, puts back.
	m.notice("rpm ran the file trigger at priority 1000699 before the one at 1000701, against their priorities: taking the snapshot now, to put back after systemd-binfmt")
	return m.takeSnapshot(fs, st, StepGuardAfter)
}

// SystemdBinfmt is the program systemd's binfmt trigger runs.
const SystemdBinfmt = "/usr/lib/systemd/systemd-binfmt"

// systemdPrefix is the one directory systemd's binfmt trigger watches.
const systemdPrefix = "/usr/lib/binfmt.d/"

// flushToCome says, one line per entry, which entries an rpm that runs
// guard-after before systemd's binfmt trigger leaves to its flush: the
// table is as guard-before saw it (nothing flushed since), yet this
// transaction installed a file systemd's trigger watches and
// systemd-binfmt is there to run, so the flush is still to come, and no
// step of the helper runs after it. The entries at risk are those no
// binfmt.d file on disk defines: systemd-binfmt registers the others
// again.
func (m *Manager) flushToCome(fs *binfmt.FS, st *TxState, files []string) error {
	watched := false
	for _, f := range files {
		watched = watched || strings.HasPrefix(f, systemdPrefix)
	}
	if !watched {
		return nil
	}
	if _, err := os.Stat(m.Config.Root + SystemdBinfmt); err != nil {
		return nil
	}
	now, err := m.table(fs)
	if err != nil {
		return err
	}
	disk, _ := m.onDisk()
	raw := map[string][]byte{}
	for _, e := range st.Snapshot {
		raw[e.Name] = e.Raw
	}
	for _, n := range FlushToCome(st.Snapshot, now, disk, m.goneDefs(st)) {
		again := "register it again after the transaction"
		if l, err := binfmt.ParseLive(n, raw[n]); err == nil {
			again += fmt.Sprintf(" (%q to %s/register", l.RegisterString(), fs.Dir)
			if !l.Enabled {
				again += fmt.Sprintf(", then 0 to %s/%s", fs.Dir, n)
			}
			again += ")"
		}
		m.notice("entry %q is at risk: rpm ran the file trigger at priority 1000699 before systemd's binfmt trigger (1000700), which flushes every entry and registers only the binfmt.d files, and nothing of binfmtctl runs after it to put this one back; %s", n, again)
	}
	return nil
}

// FlushToCome returns the entries of the snapshot that a flush still to
// come would take for good, or none when the table was flushed since the
// snapshot (the flush is over): the entries no binfmt.d file on disk
// defines, all still live as the snapshot saw them (same inode).
func FlushToCome(snapshot, now []RawEntry, onDisk map[string]binfmt.Line, leaving []binfmt.Entry) []string {
	if Flushed(snapshot, now, onDisk, leaving) {
		return nil
	}
	left := map[string]bool{}
	for _, l := range leaving {
		left[l.Name] = true
	}
	var out []string
	for _, e := range snapshot {
		if _, ok := onDisk[e.Name]; !ok && !left[e.Name] {
			out = append(out, e.Name)
		}
	}
	return out
}

func (m *Manager) takeSnapshot(fs *binfmt.FS, st *TxState, by string) error {
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
		if err := unix.Stat(joinPath(fs.Dir, n), &st); err != nil {
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
	plan := PlanRestore(rev, live, disk, m.goneDefs(st))
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
		return errorf("flag F opens the interpreter %s when registering, and it no longer exists", l.Interpreter)
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
		return errorf("registered again, but the kernel shows %q instead of %q", now, r.Raw)
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

// cleanupRemoving gives the binfmt.d files rpm is about to remove (the
// %filetriggerun of one package, while they exist) the erase of a package
// that calls the hooks, when none of their owners does: Plan with the
// files as gone, adopting what they define exactly. Files of packages
// that call the hooks are left to the hooks; a file no package owns is
// the administrator's.
func (m *Manager) cleanupRemoving(st *TxState, files []string) error {
	// The leaving step asked rpm who owns them, before the transaction,
	// when a record claimed what they define; for the others AskOwners
	// decides now, with the records as they are now.
	owners := map[string][]Owner{}
	var unknown []string
	for _, f := range files {
		if l, ok := st.leavingFile(f); ok && len(l.Owners) > 0 {
			owners[f] = l.Owners
		} else {
			unknown = append(unknown, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	if _, err := binfmt.Open(m.BinfmtDir); err != nil {
		// Before asking rpm anything: nothing can be unregistered.
		var named []string
		for _, f := range files {
			if o, ok := owners[f]; !ok || isPlain(o) {
				named = append(named, f)
			}
		}
		if len(named) > 0 {
			m.notice("%v; the entries of %s stay until the next reboot", err, strings.Join(named, ", "))
		}
		return nil
	}
	asked, _ := m.hookOwners(unknown)
	var plain []string
	for _, f := range files {
		if _, ok := owners[f]; !ok {
			owners[f] = asked[f]
		}
		if isPlain(owners[f]) {
			plain = append(plain, f)
		}
	}
	if len(plain) == 0 {
		return nil
	}
	return m.Apply(Change{Package: m.recordedOwner(owners, plain), Gone: plain, Adopt: true})
}

// confFileOf is what the leaving file old defined, as the file it was.
//
//go:noinline
func confFileOf(old LeavingFile) ConfFile {
	cf := ConfFile{Path: old.Path}
	for _, raw := range old.Lines {
		if e, err := binfmt.ParseLine(raw); err == nil {
			cf.Lines = append(cf.Lines, binfmt.Line{Entry: e, File: old.Path, Raw: raw})
		}
	}
	return cf
}

// recordedOwner is the package that owns all of files when it has a
// record (a "binfmtctl sync PACKAGE" made one for a package that never
// calls the hooks): the cleanup then runs as that package's, so that its
// record decides and goes with its entries. Otherwise "": no record is
// made for such a package. (A record that claims what files define makes
// the triggers ask rpm for the owners' names: AskOwners.)
func (m *Manager) recordedOwner(owners map[string][]Owner, files []string) string {
	owner := ""
	for _, f := range files {
		os := owners[f]
		if len(os) != 1 || (owner != "" && os[0].Name != owner) {
			return ""
		}
		owner = os[0].Name
	}
	if owner == "" || !recordExists(m.Store, owner) {
		return ""
	}
	return owner
}

// cleanupInstalled registers the entries of binfmt.d files this
// transaction installed, for packages that never call the hooks, where
// systemd's trigger does not run (it registers every file after its
// flush): Plan with the files as the ones that define entries, adopting
// exact matches. A file that replaced an older version (it was leaving)
// is registered again, so that F pins the new interpreter file, and what
// the older version defined is taken as the transaction's, so that a
// changed or dropped definition is replaced or removed.
func (m *Manager) cleanupInstalled(st *TxState, files []string) error {
	if m.systemdRuns() || len(files) == 0 {
		return nil
	}
	if _, err := binfmt.Open(m.BinfmtDir); err != nil {
		// Before asking rpm anything: nothing can be registered.
		m.notice("%v; binfmt entries of %s left to systemd-binfmt at the next boot", err, strings.Join(files, ", "))
		return nil
	}
	plain := m.plain(files)
	if len(plain) == 0 {
		return nil
	}
	var fresh, upgraded []string
	var replaced []ConfFile
	for _, f := range plain {
		old, ok := st.leavingFile(f)
		if !ok {
			fresh = append(fresh, f)
			continue
		}
		upgraded = append(upgraded, f)
		replaced = append(replaced, confFileOf(old))
	}
	var errs []error
	if len(fresh) > 0 {
		errs = append(errs, m.Apply(Change{Files: fresh, Adopt: true}))
	}
	if len(upgraded) > 0 {
		errs = append(errs, m.Apply(Change{Files: upgraded, Repin: true, Replaced: replaced, Adopt: true}))
	}
	return joinErrors(errs)
}

// plain keeps the files that some installed package owns and whose
// owners never call the hooks, as far as AskOwners needs to know.
func (m *Manager) plain(files []string) []string {
	owners, _ := m.hookOwners(files)
	var out []string
	for _, f := range files {
		if isPlain(owners[f]) {
			out = append(out, f)
		}
	}
	return out
}

// isPlain reports whether some package owns a file and none of its
// owners calls the hooks.
func isPlain(owners []Owner) bool {
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		if o.Hooks {
			return false
		}
	}
	return true
}

// systemdRuns reports whether systemd's binfmt trigger runs
// systemd-binfmt here: /run/systemd/system exists (systemd's
// src/rpm/triggers.systemd.in). Only then does anything flush the table.
func (m *Manager) systemdRuns() bool {
	_, err := os.Stat(joinPath(m.Config.Root, SystemdBooted))
	return err == nil
}

// seenFile returns what an early step recorded for path.
func (s *TxState) seenFile(path string) (LeavingFile, bool) {
	for _, l := range s.Seen {
		if l.Path == path {
			return l, true
		}
	}
	return LeavingFile{}, false
}

// leavingFile returns what the leaving step recorded for path.
//
// Not inlined: one copy for its callers keeps binfmtctl small.
//
//go:noinline
func (s *TxState) leavingFile(path string) (LeavingFile, bool) {
	for _, l := range s.Leaving {
		if l.Path == path {
			return l, true
		}
	}
	return LeavingFile{}, false
}
