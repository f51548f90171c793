package lifecycle

import (
	"fmt"
	"sort"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// This file holds the one decision every caller shares: hooks, sync,
// prune and file triggers all describe what they see (a Snapshot) and
// what the transaction changes (a Change), and Plan says what to write.
// Plan reads nothing and writes nothing, so it is tested table-driven
// (plan_test.go); Manager.Apply is the thin step that reads, plans,
// writes the kernel and keeps the records.

// ConfFile is one binfmt.d file that systemd's lookup considers.
type ConfFile struct {
	// Path is the path as the system sees it, e.g.
	// /usr/lib/binfmt.d/qemu-aarch64-static.conf.
	Path string
	// Masked is true for a symlink to /dev/null or an empty file.
	Masked bool
	// Lines are the lines that parse, in file order.
	Lines []binfmt.Line
}

// Snapshot is what one run sees before it writes anything.
type Snapshot struct {
	// Live is the kernel's table, by entry name.
	Live map[string]binfmt.Live
	// Files holds, for each binfmt.d file name (the lookup key, e.g.
	// "x.conf"), every file of that name in binfmt.ConfigDirs order:
	// the first one not removed by the transaction wins, as in
	// systemd's lookup.
	Files map[string][]ConfFile
	// Claims is every package's record.
	Claims map[string]Claims
	// Owners maps a binfmt.d file's path to the names of the installed
	// packages that own it. A path that is missing is of unknown owner
	// and counts as staying; a path mapped to no package is nobody's
	// (the administrator's) and stays.
	Owners map[string][]string
	// OwnersFailed is true when rpm could not say who owns the files:
	// then a file of unknown owner that is not among Change.Files counts
	// as gone, so that the package's record decides, as it did before
	// files were asked about.
	OwnersFailed bool
	// Check judges a definition before it is registered (the C/O
	// credential check, F with a missing interpreter). Nil accepts all.
	Check func(binfmt.Line) (warnings []string, err error)
	// Refuse turns down a definition without failing the run: an entry
	// that would match the machine's own programs (binfmt.CheckNative)
	// is named in a notice and not registered. Nil refuses none.
	Refuse func(binfmt.Line) error
}

// Change is what the transaction does, as far as one run knows it.
type Change struct {
	// Package is the package the run is for; its record is kept. It may
	// be "" (a file trigger for files no package with hooks owns).
	Package string
	// Files are Package's files once the transaction is over: its
	// manifest for post and sync, nil for an erase. Its binfmt.d files
	// among them are the ones the package defines entries with, and
	// they stay.
	Files []string
	// Gone lists binfmt.d files the transaction removes, when the
	// caller knows them (a file trigger's standard input). Besides
	// these, a file is gone when every package that owns it is called
	// Package and it is not among Files: the old version's files
	// during an upgrade, the package's own files on erase.
	Gone []string
	// Repin registers again what Package defines even when it is live
	// as defined, so that an F entry pins the interpreter file now on
	// disk.
	Repin bool
	// Replaced are binfmt.d files as they were before the transaction
	// replaced them (a file trigger records them while they exist): with
	// Adopt, a live entry that matches what they defined is taken as
	// one the transaction concerns, so that an upgrade that changes or
	// drops a definition replaces or removes it.
	Replaced []ConfFile
	// Adopt lets the run take charge of a live entry that no record
	// claims when it matches exactly what a file the transaction
	// concerns defines (registered by systemd-binfmt at boot, or before
	// a record was lost). False when the table belongs to a system
	// outside the root (dnf --installroot with the host's /proc): such
	// entries are the host's.
	Adopt bool
}

// Action is what a Step does to one entry.
type Action string

// Actions.
const (
	// Register registers an entry that is not live.
	Register Action = "register"
	// Replace unregisters the live entry and registers Def in its place.
	Replace Action = "replace"
	// Unregister removes the live entry.
	Unregister Action = "unregister"
	// Leave writes nothing.
	Leave Action = "leave"
)

// Step is the decision for one entry name.
type Step struct {
	Name   string
	Action Action
	// Def is the definition registered (Register, Replace), or the one
	// that defines the entry (Leave); zero when none does.
	Def binfmt.Line
	// Live is the entry as it is now, nil when none is registered.
	Live *binfmt.Live
	// Reason says why, in words for the user.
	Reason string
	// Notice is true when the user should read Reason: an entry left
	// alone because it is someone else's, or kept because another file
	// still defines it.
	Notice bool
}

// Result is a plan: the steps in the order they are applied, and every
// record as it stands once they all succeed.
type Result struct {
	Steps []Step
	// Records holds the claims of each package whose record changes,
	// once the plan is applied; empty Claims remove the record.
	Records map[string]Claims
	// Notices are things to tell the user that are no step's (masked
	// files, warnings about interpreters).
	Notices []string
	// Errors are definitions refused (unsafe interpreters).
	Errors []error
}

// Gone reports whether the transaction removes the binfmt.d file at p.
func (s Snapshot) gone(ch Change, keep map[string]bool, explicit map[string]bool, p string) bool {
	if explicit[p] {
		return true
	}
	if keep[p] || ch.Package == "" {
		return false
	}
	owners, known := s.Owners[p]
	if !known {
		return s.OwnersFailed
	}
	if len(owners) == 0 {
		return false
	}
	for _, o := range owners {
		if o != ch.Package {
			return false
		}
	}
	return true
}

// def is the definition that wins for one entry name among files, and
// where it stands in systemd's order of application.
type def struct {
	line binfmt.Line
	pos  int
}

// effective applies files in systemd-binfmt's order, file names sorted
// across directories and lines in file order, skipping the files gone
// reports: the last line for a name wins, as the last write does at
// boot. It returns the winning definitions and, for each file name, the
// file that wins the lookup (absent when none is left).
func effective(files map[string][]ConfFile, gone func(string) bool) (map[string]def, map[string]ConfFile) {
	bases := make([]string, 0, len(files))
	for b := range files {
		bases = append(bases, b)
	}
	sortStrings(bases)
	defs := map[string]def{}
	winners := map[string]ConfFile{}
	pos := 0
	for _, b := range bases {
		for _, f := range files[b] {
			if gone(f.Path) {
				continue
			}
			winners[b] = f
			if !f.Masked {
				for _, l := range f.Lines {
					defs[l.Name] = def{line: l, pos: pos}
					pos++
				}
			}
			break
		}
	}
	return defs, winners
}

// Plan decides what a run writes. The rule, from DESIGN.md's invariant:
// an entry belongs to the files that define it. Once the transaction is
// over,
//
//   - an entry that Change.Package defines is live as the files then on
//     disk define it (the last definition in systemd's order, which may
//     be another file's), registered again when Repin asks;
//   - an entry it claims but no longer defines stays live as another
//     file still defines it, and goes when no file does;
//   - an entry is only ever replaced or removed while it is live as a
//     record claims it, or, with Adopt, as a file the transaction
//     concerns defines it exactly; anything else is someone else's and
//     is left alone.
//
// Claims follow the entry: when a step replaces an entry that other
// packages claim, their records claim the new definition, and when it
// removes one, their claims on it go.
func Plan(s Snapshot, ch Change) Result {
	var r Result
	keep := map[string]bool{}
	for _, f := range ch.Files {
		keep[f] = true
	}
	explicit := map[string]bool{}
	for _, f := range ch.Gone {
		explicit[f] = true
	}
	isGone := func(p string) bool { return s.gone(ch, keep, explicit, p) }
	after, winners := effective(s.Files, isGone)

	// The names the package's own binfmt.d files define, through the
	// lookup: an /etc file of the same name overrides the package's.
	mine := map[string]bool{}
	for _, base := range ConfNames(ch.Files, binfmt.ConfigDirs) {
		w, ok := winners[base]
		if !ok {
			continue // the package's file is gone and nothing overrides it
		}
		if w.Masked {
			r.Notices = append(r.Notices, fmt.Sprintf("%s is masked by %s; not registering its entries", base, w.Path))
			continue
		}
		for _, l := range w.Lines {
			mine[l.Name] = true
		}
	}
	// Definitions from files the transaction removes, for adopting an
	// entry they defined that no record claims.
	goneDefs := map[string][]binfmt.Line{}
	for _, cands := range s.Files {
		for _, f := range cands {
			if isGone(f.Path) && !f.Masked {
				for _, l := range f.Lines {
					goneDefs[l.Name] = append(goneDefs[l.Name], l)
				}
			}
		}
	}

	for _, f := range ch.Replaced {
		if !f.Masked {
			for _, l := range f.Lines {
				goneDefs[l.Name] = append(goneDefs[l.Name], l)
			}
		}
	}

	records := map[string]Claims{}
	for p, c := range s.Claims {
		records[p] = c.Clone()
	}
	pkg := ch.Package
	if pkg != "" && records[pkg] == nil {
		records[pkg] = Claims{}
	}
	var mineClaims Claims
	if pkg != "" {
		mineClaims = s.Claims[pkg]
	}

	// The names this run is about, mine first in the order systemd
	// applies them, then the rest by name.
	var names []string
	seen := map[string]bool{}
	for n := range mine {
		names = append(names, n)
		seen[n] = true
	}
	sort.Slice(names, func(i, j int) bool { return after[names[i]].pos < after[names[j]].pos })
	var rest []string
	for n := range mineClaims {
		if !seen[n] {
			seen[n] = true
			rest = append(rest, n)
		}
	}
	for n := range goneDefs {
		if !seen[n] {
			seen[n] = true
			rest = append(rest, n)
		}
	}
	sortStrings(rest)
	names = append(names, rest...)

	var registers, unregisters, leaves []Step
	for _, name := range names {
		d, defined := after[name]
		st := Step{Name: name, Action: Leave}
		if defined {
			st.Def = d.line
		}
		live, isLive := s.Live[name]
		if isLive {
			l := live
			st.Live = &l
		}
		// owners are the packages whose record claims the live entry.
		var owners []string
		if isLive {
			for p, c := range s.Claims {
				if c.Owns(live) {
					owners = append(owners, p)
				}
			}
			sortStrings(owners)
		}
		ownedByMe := isLive && mineClaims.Owns(live)
		adoptable := false
		if isLive && len(owners) == 0 && ch.Adopt {
			if mine[name] && defined && live.Matches(d.line.Entry) {
				adoptable = true
			}
			for _, g := range goneDefs[name] {
				if live.Matches(g.Entry) {
					adoptable = true
				}
			}
			// The swap rule (docs/lifecycle.md): an entry no file on
			// disk defines any more, whose interpreter is one of the
			// package's own files, was left behind by a removed
			// package, the one whose paths this package now holds.
			if mine[name] && defined && !live.Matches(d.line.Entry) && hasPath(ch.Files, live.Interpreter) {
				adoptable = true
			}
		}
		// fromGone: the entry is live as a file the transaction removes
		// defined it, and is this root's (claimed, or Adopt): the
		// transaction is what takes that definition away, whoever's
		// record claims it.
		fromGone := false
		if isLive && (len(owners) > 0 || ch.Adopt) {
			for _, g := range goneDefs[name] {
				if live.Matches(g.Entry) {
					fromGone = true
				}
			}
		}
		// staleClaim: the package claims the name, but the live entry
		// is not what it claims.
		staleClaim := len(mineClaims[name]) > 0 && !ownedByMe
		claim := func(e binfmt.Entry) {
			if pkg == "" {
				return
			}
			c := Claims{}
			c.Add(e)
			records[pkg][name] = c[name]
		}
		drop := func() {
			if pkg != "" {
				delete(records[pkg], name)
			}
		}
		// follow moves the claims of every other package on the live
		// entry to def, or drops them when def is nil.
		follow := func(to *binfmt.Entry) {
			for _, p := range owners {
				if p == pkg {
					continue
				}
				if to == nil {
					delete(records[p], name)
					continue
				}
				if !SameClaim(live.Entry, *to) {
					c := Claims{}
					c.Add(*to)
					records[p][name] = c[name]
				}
			}
		}
		switch {
		case !isLive:
			if mine[name] && defined {
				st.Action = Register
				st.Reason = "defined by " + d.line.String()
				claim(d.line.Entry)
			} else {
				drop()
				st.Reason = "not registered"
			}

		case len(owners) == 0 && !adoptable:
			// Someone else's: the administrator's, another tool's, or
			// the host's when the table is not the root's.
			switch {
			case mine[name] && staleClaim:
				st.Reason, st.Notice = fmt.Sprintf("entry %q was replaced by someone else since %s registered it; leaving it alone", name, pkg), true
			case mine[name]:
				st.Reason, st.Notice = fmt.Sprintf("entry %q is registered by someone else; leaving it alone (%s defines it in %s)", name, pkg, d.line), true
				drop()
			case staleClaim:
				st.Reason, st.Notice = fmt.Sprintf("entry %q was replaced by someone else since %s registered it; leaving it alone", name, pkg), true
				drop()
			default:
				st.Reason = "registered by someone else"
			}

		case !ownedByMe && !adoptable && !fromGone && !mine[name]:
			// Another package's live entry that this one does not
			// define: that package's hooks decide.
			drop()
			st.Reason = "claimed by " + strings.Join(owners, ", ")

		case defined && mine[name]:
			if live.Matches(d.line.Entry) && live.Enabled && !ch.Repin {
				st.Reason = "live as " + d.line.String() + " defines it"
			} else {
				st.Action = Replace
				st.Reason = "defined by " + d.line.String()
				follow(&d.line.Entry)
			}
			claim(d.line.Entry)

		case defined:
			// The package no longer defines it, another file still does.
			drop()
			if live.Matches(d.line.Entry) {
				st.Reason, st.Notice = fmt.Sprintf("entry %q stays: %s still defines it", name, d.line), true
			} else {
				st.Action = Replace
				st.Reason, st.Notice = fmt.Sprintf("entry %q is registered again as %s defines it", name, d.line), true
				follow(&d.line.Entry)
			}

		default:
			st.Action = Unregister
			st.Reason = "no binfmt.d file defines it any more"
			drop()
			follow(nil)
		}

		if st.Action == Register || st.Action == Replace {
			var warnings []string
			var err error
			refused := false
			if s.Refuse != nil {
				if err = s.Refuse(st.Def); err != nil {
					// A package must not brick the machine through its
					// binfmt.d file; not a failure of the transaction.
					r.Notices = append(r.Notices, fmt.Sprintf("%s: %v; not registering it", st.Def, err))
					refused = true
				}
			}
			if err == nil && s.Check != nil {
				warnings, err = s.Check(st.Def)
			}
			for _, w := range warnings {
				r.Notices = append(r.Notices, fmt.Sprintf("%s: %s", st.Def, w))
			}
			if err != nil {
				// Refused; what was this package's under that name goes.
				if !refused {
					r.Errors = append(r.Errors, errorf("%s: %w", st.Def, err))
				}
				if mine[name] {
					drop()
				}
				if isLive && (ownedByMe || adoptable || fromGone) {
					st.Action, st.Reason = Unregister, "its definition is refused: "+err.Error()
					// The others' claims on the live entry go with it.
					if len(owners) > 0 {
						follow(nil)
					}
				} else {
					st.Action, st.Reason = Leave, "its definition is refused: "+err.Error()
					// Undo the claim moves of a refused replace.
					for _, p := range owners {
						if p != pkg {
							records[p][name] = s.Claims[p][name]
						}
					}
				}
			}
		}
		settleOthers(records, pkg, name, st, isLive, live)
		switch st.Action {
		case Register, Replace:
			registers = append(registers, st)
		case Unregister:
			unregisters = append(unregisters, st)
		default:
			leaves = append(leaves, st)
		}
	}
	r.Steps = append(append(registers, unregisters...), leaves...)

	// Only the records that change.
	r.Records = map[string]Claims{}
	for p, c := range records {
		for n, es := range c {
			if len(es) == 0 {
				delete(c, n)
			}
		}
		if string(c.Render()) != string(s.Claims[p].Render()) || (p == pkg && s.Claims[p] == nil && len(c) > 0) {
			r.Records[p] = c
		}
	}
	return r
}

// settleOthers reduces another package's several claims on name to the
// one the entry is once st is applied. A name has several claims only
// while one definition replaces another (docs/lifecycle.md, "The
// record"): a run killed between its intent and its result leaves them,
// and when the rerun finds nothing to replace (the entry is already
// what it registers, or not live and registered afresh) no follow
// drops the old one. Under the lock the entry is then provably the one
// kept, so the others are not live; the intent still holds them all
// (apply writes the old claims plus the new), and a step that fails is
// settled from the old claims against what is live. Nothing is dropped
// when none of the claims is what the entry will be.
func settleOthers(records map[string]Claims, pkg, name string, st Step, isLive bool, live binfmt.Live) {
	var after binfmt.Entry
	switch {
	case st.Action == Register || st.Action == Replace:
		after = st.Def.Entry
	case st.Action == Leave && isLive:
		after = live.Entry
	default:
		return
	}
	for p, c := range records {
		if p == pkg || len(c[name]) < 2 {
			continue
		}
		var keep []binfmt.Entry
		for _, e := range c[name] {
			if SameClaim(e, after) {
				keep = append(keep, e)
			}
		}
		if len(keep) > 0 {
			c[name] = keep
		}
	}
}

// SameClaim reports whether two definitions give the same entry file,
// so that a claim on one is a claim on the other.
func SameClaim(a, b binfmt.Entry) bool { return binfmt.SameDefinition(a, b) }

// NeedOwners lists the binfmt.d files whose owning packages Plan needs
// to know for this change: every file that defines an entry the package
// defines or claims, except the package's own files, which stay. Asking
// rpm for them is the dearest part of a run, so the thin layer asks only
// for these, in one query.
func NeedOwners(s Snapshot, ch Change) []string {
	keep := map[string]bool{}
	for _, f := range ch.Files {
		keep[f] = true
	}
	names := map[string]bool{}
	for n := range s.Claims[ch.Package] {
		names[n] = true
	}
	// What the package's files define, whichever candidate wins.
	for _, base := range ConfNames(ch.Files, binfmt.ConfigDirs) {
		for _, f := range s.Files[base] {
			for _, l := range f.Lines {
				names[l.Name] = true
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, cands := range s.Files {
		defines := false
		for _, f := range cands {
			for _, l := range f.Lines {
				if names[l.Name] {
					defines = true
				}
			}
		}
		if !defines {
			continue
		}
		// Every candidate of that file name: a shadowed one wins once
		// the winner is gone.
		for _, f := range cands {
			if !keep[f.Path] && !seen[f.Path] {
				seen[f.Path] = true
				out = append(out, f.Path)
			}
		}
	}
	sortStrings(out)
	return out
}
