package lifecycle

import (
	"errors"
	"fmt"
	"io"
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

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
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
		return 0, errorf("parsing rpm's $1 %q: want a number of 0 or more", s)
	}
	return n, nil
}

// Hook runs the hook for phase of the package nevra, where count is rpm's
// $1. See the table in DESIGN.md for when rpm runs each:
//
//   - post (any count): converge on the entries nevra defines now. On an
//     upgrade, downgrade or reinstall this runs while the old version is
//     still installed, so entries only the old version's files defined
//     are unregistered here (unless another file still defines them),
//     and the others are registered again so that F entries pin the new
//     interpreter files.
//   - preun and postun with count 0 (erase): unregister what the package
//     registered that no remaining binfmt.d file defines (Plan). postun
//     repeats it because %preun may have been skipped (rpm -e --nopreun)
//     or may have failed. preun, which runs while the package's files are
//     all still there, also unregisters, when the record is damaged or
//     empty, the live entries that match one of the package's definitions
//     exactly, as post would adopt them: so a record that was damaged or
//     deleted loses nothing.
//   - preun and postun with count ≥ 1 (the old side of an upgrade): nothing,
//     as the new version's post has already converged.
//
// A hook that cannot get the lock within the Store's LockTimeout says so
// and returns nil: it must not hang or fail the transaction, and a later
// sync converges.
func (m *Manager) Hook(phase Phase, nevra string, count int) error {
	err := m.hook(phase, nevra, count)
	if errors.Is(err, ErrLockTimeout) {
		name, _ := NameOf(nevra)
		m.notice("%v; nothing done for %s now (run \"binfmtctl sync %s\" later)", err, nevra, name)
		return nil
	}
	return err
}

func (m *Manager) hook(phase Phase, nevra string, count int) error {
	switch phase {
	case Post:
		man, err := m.RPM.Manifest(nevra)
		if err != nil {
			return errorf("hook post %s: %w", nevra, err)
		}
		return m.Converge(man.Name, man.Files, true)
	case Preun, Postun:
		if count > 0 {
			return nil
		}
		// The record is keyed by the name alone.
		name, err := NameOf(nevra)
		if err != nil {
			return errorf("hook %s: %w", phase, err)
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
		return m.apply(Change{Package: name, Adopt: true}, manifest)
	}
	return errorf("unknown hook phase %q, want post, preun or postun", phase)
}

// NameOf returns the name part of name-version-release[.arch]: version and
// release never contain "-", so the name is what precedes the last two.
// A version or release with characters rpm never writes there is refused,
// so that a mangled argument cannot pass for the package it starts with.
func NameOf(nevr string) (string, error) {
	parts := strings.Split(nevr, "-")
	if len(parts) < 3 {
		return "", errorf("%q is not name-version-release", nevr)
	}
	for _, vr := range parts[len(parts)-2:] {
		if !validVerRel(vr) {
			return "", errorf("%q is not name-version-release: %q is not an rpm version or release", nevr, vr)
		}
	}
	name := strings.Join(parts[:len(parts)-2], "-")
	if err := ValidPackage(name); err != nil {
		return "", errorf("%q: %w", nevr, err)
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
// version defines, or on none when no package of exactly that name is
// installed (rpm's lookup of "x-1" finding x 1-1 does not count, when x-1
// has a record). It is the cure
// after a hook could not run, e.g. binfmt_misc was not mounted.
func (m *Manager) Sync(name string) error {
	ms, err := m.RPM.Installed(name)
	if err != nil {
		return errorf("sync %s: %w", name, err)
	}
	var files []string
	other := ""
	for _, man := range ms {
		if man.Name != name {
			// rpm's lookup of "x-1" also finds x 1-N.
			other = man.Name
			continue
		}
		files = append(files, man.Files...)
	}
	if files == nil && other != "" && !recordExists(m.Store, name) {
		return errorf("sync %s: pass a package name, not %q (it matched %s)", name, name, other)
	}
	return m.Converge(name, files, true)
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
		m.notice("%v; the entries %s registered stay until the next reboot (listed in %s)", cause, pkg, joinPath(m.Store.Dir, pkg))
		return nil
	}
	m.notice("%v; binfmt entries of %s left to systemd-binfmt at the next boot (run \"binfmtctl sync %s\" once binfmt_misc is available)", cause, pkg, pkg)
	return nil
}
