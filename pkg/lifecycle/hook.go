package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// Manager applies a package's binfmt entries to the kernel and keeps the
// Store in step. It is what the hooks and the sync command run.
type Manager struct {
	// BinfmtDir is the binfmt_misc mount point.
	BinfmtDir string
	// Config finds binfmt.d files (and interpreters) under its Root.
	Config binfmt.Config
	Store  Store
	RPM    Querier
	// Notices receives one line per thing the user should know: entries
	// left alone, binfmt_misc missing, lines that do not parse.
	Notices io.Writer
}

func (m *Manager) notice(format string, args ...any) {
	if m.Notices != nil {
		fmt.Fprintf(m.Notices, "binfmtctl: "+format+"\n", args...)
	}
}

// Phase names a scriptlet.
type Phase string

// Scriptlet phases.
const (
	Post   Phase = "post"
	Preun  Phase = "preun"
	Postun Phase = "postun"
)

// ParseCount parses rpm's $1 for a scriptlet: the number of instances of
// the package left installed once the transaction is over.
func ParseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("parsing rpm's $1 %q: want a number of 0 or more", s)
	}
	return n, nil
}

// Hook runs the hook for phase of the package nevra, where count is rpm's
// $1. See the table in DESIGN.md for when rpm runs each:
//
//   - post (any count): converge on the entries nevra defines now. On an
//     upgrade, downgrade or reinstall this runs while the old version is
//     still installed, so entries only the old version defined are
//     unregistered here, and the others are registered again so that F
//     entries pin the new interpreter files.
//   - preun and postun with count 0 (erase): unregister everything the
//     package registered. postun repeats it because %preun may have been
//     skipped (rpm -e --nopreun) or may have failed. preun, which runs
//     while the package's files are all still there, also unregisters the
//     live entries that match one of the package's definitions exactly,
//     as post would adopt them: so a record that was damaged or deleted
//     loses nothing.
//   - preun and postun with count ≥ 1 (the old side of an upgrade): nothing,
//     as the new version's post has already converged.
func (m *Manager) Hook(phase Phase, nevra string, count int) error {
	switch phase {
	case Post:
		man, err := m.RPM.Manifest(nevra)
		if err != nil {
			return fmt.Errorf("hook post %s: %w", nevra, err)
		}
		return m.Converge(man.Name, man.Files, true)
	case Preun, Postun:
		if count > 0 {
			return nil
		}
		// The record is keyed by the name alone.
		name, err := NameOf(nevra)
		if err != nil {
			return fmt.Errorf("hook %s: %w", phase, err)
		}
		var manifest func() []string
		if phase == Preun && m.RPM != nil {
			// Best effort: without the manifest the record alone decides.
			manifest = func() []string {
				if man, err := m.RPM.Manifest(nevra); err == nil && man.Name == name {
					return man.Files
				}
				return nil
			}
		}
		return m.converge(name, nil, false, manifest)
	}
	return fmt.Errorf("unknown hook phase %q, want post, preun or postun", phase)
}

// NameOf returns the name part of name-version-release[.arch]: version and
// release never contain "-", so the name is what precedes the last two.
// A version or release with characters rpm never writes there is refused,
// so that a mangled argument cannot pass for the package it starts with.
func NameOf(nevr string) (string, error) {
	parts := strings.Split(nevr, "-")
	if len(parts) < 3 {
		return "", fmt.Errorf("%q is not name-version-release", nevr)
	}
	for _, vr := range parts[len(parts)-2:] {
		if !validVerRel(vr) {
			return "", fmt.Errorf("%q is not name-version-release: %q is not an rpm version or release", nevr, vr)
		}
	}
	name := strings.Join(parts[:len(parts)-2], "-")
	if err := ValidPackage(name); err != nil {
		return "", fmt.Errorf("%q: %w", nevr, err)
	}
	return name, nil
}

// validVerRel reports whether s is a possible rpm version or release:
// letters, digits and what rpmbuild allows besides (ALLOWED_CHARS_VERREL,
// "._+%{}~^"), and the ":" of an epoch.
func validVerRel(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._+%{}~^:", c)) {
			return false
		}
	}
	return true
}

// Sync converges the package called name on the entries its installed
// version defines, or on none when it is not installed. It is the cure
// after a hook could not run, e.g. binfmt_misc was not mounted.
func (m *Manager) Sync(name string) error {
	ms, err := m.RPM.Installed(name)
	if err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	var files []string
	for _, man := range ms {
		if man.Name != name {
			return fmt.Errorf("sync %s: pass a package name, not %q (it matched %s)", name, name, man.Name)
		}
		files = append(files, man.Files...)
	}
	return m.Converge(name, files, true)
}

// Desired resolves the binfmt.d files among a package's files through
// systemd's lookup and returns the entries they define, keyed by name.
// When two lines define one name, the later wins, as the later write
// does for systemd-binfmt.
func (m *Manager) Desired(files []string) (map[string]binfmt.Line, []string, error) {
	desired := map[string]binfmt.Line{}
	var order []string
	var errs []error
	for _, name := range ConfNames(files, binfmt.ConfigDirs) {
		f, err := m.Config.Lookup(name)
		if err != nil {
			// The package's file is gone and nothing overrides it: it
			// defines nothing now.
			continue
		}
		if f.Masked {
			m.notice("%s is masked by %s; not registering its entries", name, f.Path)
			continue
		}
		lines, lerrs := m.Config.Load(f)
		errs = append(errs, lerrs...)
		for _, l := range lines {
			if _, ok := desired[l.Name]; !ok {
				order = append(order, l.Name)
			}
			desired[l.Name] = l
		}
	}
	return desired, order, errors.Join(errs...)
}

// Converge makes the kernel and the record agree with the package pkg
// defining the entries in files' binfmt.d files (none when files is nil):
// each defined entry is registered (again, when repin is true, so F
// entries pin the interpreter on disk now), every other entry pkg
// registered is unregistered, and an entry that is not pkg's is never
// touched.
//
// The record is written twice, each time atomically: before the kernel
// writes, with the claims to be made added to the old ones, and after,
// with what is now true. A crash at any point leaves a record that claims
// everything of pkg's that may be live, so a rerun converges.
func (m *Manager) Converge(pkg string, files []string, repin bool) error {
	return m.converge(pkg, files, repin, nil)
}

// converge is Converge that, when pkg's record is damaged or empty, first
// claims each live entry that matches exactly a definition in the
// binfmt.d files among manifest() (nil: none). Only then is the manifest
// asked for: the rpm query is the dearest part of a hook, and a sound
// record alone decides.
func (m *Manager) converge(pkg string, files []string, repin bool, manifest func() []string) error {
	if err := ValidPackage(pkg); err != nil {
		return err
	}
	unlock, err := m.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()

	desired, order, lineErrs := m.Desired(files)
	if lineErrs != nil {
		// Bad lines are skipped, as systemd-binfmt skips them; the good
		// lines are still applied. Each is named once, on its own line.
		bad := []error{lineErrs}
		if j, ok := lineErrs.(interface{ Unwrap() []error }); ok {
			bad = j.Unwrap()
		}
		for _, err := range bad {
			m.notice("%v", err)
		}
		lineErrs = &skippedLines{pkg: pkg, errs: bad}
	}
	claims, claimErr := m.Store.Claims(pkg)
	if claims == nil {
		return claimErr
	}
	if claimErr != nil {
		m.notice("%v (ignoring what could not be read)", claimErr)
	}
	// onDisk is what the record holds, when it was read whole. A save
	// that would write the same bytes again is skipped: each costs two
	// fsyncs in the middle of a transaction. So a fresh install writes
	// its record once, as the intent, which the result repeats, and a
	// reinstall that changes nothing writes nothing.
	var onDisk []byte
	if claimErr == nil {
		onDisk = claims.Render()
	}
	save := func(c Claims) error {
		rendered := c.Render()
		if len(c) > 0 && onDisk != nil && bytes.Equal(rendered, onDisk) {
			return nil
		}
		if err := m.Store.Save(pkg, c); err != nil {
			onDisk = nil
			return err
		}
		onDisk = rendered
		return nil
	}

	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return m.unavailable(pkg, err, len(files) == 0)
	}
	if manifest != nil && (claimErr != nil || len(claims) == 0) {
		m.adopt(fs, claims, manifest())
	}

	// Decide what to do with each entry before writing anything.
	type task struct {
		line binfmt.Line
		live *binfmt.Live // nil when nothing of that name is registered
	}
	var register []task
	final := Claims{}
	var failed []error
	for _, name := range order {
		l := desired[name]
		live, err := fs.Entry(name)
		switch {
		case errors.Is(err, binfmt.ErrNotFound):
			register = append(register, task{line: l})
		case err != nil:
			return m.failed(pkg, err, len(files) == 0)
		case !claims.Owns(live) && !live.Matches(l.Entry) && !m.leftBehind(live, files):
			if len(claims[name]) > 0 {
				m.notice("entry %q was replaced by someone else since %s registered it; leaving it alone", name, pkg)
				final[name] = claims[name]
			} else {
				m.notice("entry %q is registered by someone else; leaving it alone (%s defines it in %s)", name, pkg, l)
			}
		case live.Enabled && live.Matches(l.Entry) && !repin:
			final.Add(l.Entry)
		default:
			register = append(register, task{line: l, live: &live})
		}
	}
	var unregister []string
	for _, name := range claims.Names() {
		if _, ok := desired[name]; !ok {
			unregister = append(unregister, name)
		}
	}

	// Unsafe definitions are refused; what was ours under that name goes.
	safe := register[:0]
	for _, t := range register {
		warnings, err := binfmt.CheckInterpreter("/", t.line.Entry)
		if err == nil && t.line.HasFlag('F') && !t.line.InterpreterExists("/") {
			// The kernel would refuse it, as flag F opens the interpreter
			// when registering: say so once, as the error, rather than as
			// a warning followed by the kernel's error.
			warnings = nil
			err = fmt.Errorf("entry %q: %w: interpreter %q does not exist (flag F opens it when registering)", t.line.Name, binfmt.ErrInvalid, t.line.Interpreter)
		}
		for _, w := range warnings {
			m.notice("%s: %s", t.line, w)
		}
		if err != nil {
			// Returned, and so printed once, by the caller.
			failed = append(failed, fmt.Errorf("%s: %w", t.line, err))
			if t.live != nil || len(claims[t.line.Name]) > 0 {
				unregister = append(unregister, t.line.Name)
			}
			continue
		}
		safe = append(safe, t)
	}
	register = safe

	crashPoint("before-intent")
	if len(register) > 0 {
		intent := claims.Clone()
		for _, t := range register {
			intent.Add(t.line.Entry)
		}
		if err := save(intent); err != nil {
			return err
		}
	}
	crashPoint("after-intent")

	for _, t := range register {
		err := m.register(fs, t.line, t.live, claims)
		if isUnavailable(err) {
			// binfmt_misc turned out read-only or refusing writes. Keep
			// what was claimed before and what did get registered, and
			// claim nothing that was not.
			rec := claims.Clone()
			for n, defs := range final {
				rec[n] = defs
			}
			// Saved even when unchanged, so that a caller who may not
			// write the record (not root) is told so.
			if serr := m.Store.Save(pkg, rec); serr != nil {
				return serr
			}
			return m.unavailable(pkg, err, len(files) == 0)
		}
		if err != nil {
			failed = append(failed, err)
			continue
		}
		final.Add(t.line.Entry)
	}
	for _, name := range unregister {
		err := m.remove(fs, pkg, name, claims)
		if isUnavailable(err) {
			for _, n := range unregister {
				if cl, ok := claims[n]; ok && final[n] == nil {
					final[n] = cl
				}
			}
			if serr := m.Store.Save(pkg, final); serr != nil {
				return serr
			}
			return m.unavailable(pkg, err, len(files) == 0)
		}
		if err != nil {
			final[name] = claims[name]
			failed = append(failed, err)
		}
	}
	crashPoint("before-final")
	if err := save(final); err != nil {
		return err
	}
	crashPoint("after-final")
	if err := errors.Join(failed...); err != nil {
		return err
	}
	return lineErrs
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

// adopt adds to claims every live entry that matches exactly what the
// binfmt.d files among files define: the entries post adopts. Notices
// about those files (masks, bad lines) belong to post, not here.
func (m *Manager) adopt(fs *binfmt.FS, claims Claims, files []string) {
	quiet := *m
	quiet.Notices = nil
	defs, _, _ := quiet.Desired(files)
	for name, l := range defs {
		if live, err := fs.Entry(name); err == nil && live.Matches(l.Entry) {
			claims.Add(l.Entry)
		}
	}
}

// register puts l in place of live, which is pkg's or absent.
func (m *Manager) register(fs *binfmt.FS, l binfmt.Line, live *binfmt.Live, claims Claims) error {
	if live != nil {
		if err := fs.Unregister(l.Name); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
			return err
		}
		crashPoint("after-unregister")
	}
	if err := fs.RegisterString(l.Name, l.RegisterLine()); err != nil {
		return fmt.Errorf("%s: %w", l, err)
	}
	crashPoint("after-register")
	return nil
}

// remove unregisters the entry called name if it is still pkg's.
func (m *Manager) remove(fs *binfmt.FS, pkg, name string, claims Claims) error {
	live, err := fs.Entry(name)
	switch {
	case errors.Is(err, binfmt.ErrNotFound):
		return nil
	case err != nil:
		return err
	case claims.Owns(live):
		if err := fs.Unregister(name); err != nil && !errors.Is(err, binfmt.ErrNotFound) {
			return err
		}
		crashPoint("after-unregister")
		return nil
	}
	m.notice("entry %q was replaced by someone else since %s registered it; leaving it alone", name, pkg)
	return nil
}

// failed stops a run that could not even read the kernel table.
func (m *Manager) failed(pkg string, err error, erasing bool) error {
	if isUnavailable(err) {
		return m.unavailable(pkg, err, erasing)
	}
	return err
}

func isUnavailable(err error) bool {
	return errors.Is(err, binfmt.ErrNotMounted) || errors.Is(err, binfmt.ErrPermission) || errors.Is(err, binfmt.ErrReadOnly)
}

// unavailable handles a binfmt_misc that is not mounted or not writable
// (a container, a chroot, dnf --installroot). Nothing is mounted and
// nothing new is recorded: the binfmt.d files on disk let systemd-binfmt
// register the entries at the next boot. Claims already recorded stay,
// because their entries may still be live in the kernel, and a later
// sync needs them to converge.
//
// When the package is being erased there is nothing for a boot to
// register; what it registered stays live until the reboot, and the
// record that lists it stays too.
func (m *Manager) unavailable(pkg string, cause error, erasing bool) error {
	if erasing {
		m.notice("%v; the entries %s registered stay until the next reboot (listed in %s)", cause, pkg, filepath.Join(m.Store.Dir, pkg))
		return nil
	}
	m.notice("%v; binfmt entries of %s left to systemd-binfmt at the next boot (run \"binfmtctl sync %s\" once binfmt_misc is available)", cause, pkg, pkg)
	return nil
}
