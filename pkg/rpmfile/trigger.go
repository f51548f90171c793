package rpmfile

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// TriggerKind is one of rpm's six file trigger kinds
// (https://rpm-software-management.github.io/rpm/manual/file_triggers.html).
type TriggerKind int

// The file trigger kinds, named as the spec file's sections.
const (
	FileTriggerIn TriggerKind = iota
	FileTriggerUn
	FileTriggerPostUn
	TransFileTriggerIn
	TransFileTriggerUn
	TransFileTriggerPostUn
)

var triggerKinds = []string{
	FileTriggerIn:          "filetriggerin",
	FileTriggerUn:          "filetriggerun",
	FileTriggerPostUn:      "filetriggerpostun",
	TransFileTriggerIn:     "transfiletriggerin",
	TransFileTriggerUn:     "transfiletriggerun",
	TransFileTriggerPostUn: "transfiletriggerpostun",
}

func (k TriggerKind) String() string {
	if k < 0 || int(k) >= len(triggerKinds) {
		return fmt.Sprintf("TriggerKind(%d)", int(k))
	}
	return triggerKinds[k]
}

// ParseTriggerKind reads a kind by its spec section name, with or
// without the leading "%".
func ParseTriggerKind(s string) (TriggerKind, error) {
	name := strings.TrimPrefix(s, "%")
	for k, n := range triggerKinds {
		if n == name {
			return TriggerKind(k), nil
		}
	}
	return 0, fmt.Errorf("file trigger kind %q: want one of %s", s, strings.Join(triggerKinds, ", "))
}

// transaction reports whether the kind runs once per transaction
// (%transfiletrigger*) rather than once per package.
func (k TriggerKind) transaction() bool { return k >= TransFileTriggerIn }

// sense is the RPMSENSE_TRIGGER* flag rpm stores with each prefix.
func (k TriggerKind) sense() Sense {
	switch k {
	case FileTriggerIn, TransFileTriggerIn:
		return SenseTriggerIn
	case FileTriggerUn, TransFileTriggerUn:
		return SenseTriggerUn
	}
	return SenseTriggerPostun
}

// DefaultTriggerPriority is the priority of a file trigger without -P
// (rpm's RPMTRIGGER_DEFAULT_PRIORITY).
const DefaultTriggerPriority = 1000000

// LuaProg is the interpreter name of a trigger with an embedded Lua body.
const LuaProg = "<lua>"

// FileTrigger is one %filetrigger* or %transfiletrigger* section.
type FileTrigger struct {
	Kind TriggerKind
	// Priority orders triggers: higher runs first. 0 is
	// DefaultTriggerPriority, as for a section without -P.
	Priority uint32
	// Prefixes are the path prefixes that fire it (after "--").
	Prefixes []string
	// Prog runs Script: "" is /bin/sh, LuaProg is rpm's embedded Lua.
	// It takes no arguments.
	Prog string
	// Script is the body.
	Script string
}

func (tr FileTrigger) prog() string {
	if tr.Prog == "" {
		return "/bin/sh"
	}
	return tr.Prog
}

func (tr FileTrigger) priority() uint32 {
	if tr.Priority == 0 {
		return DefaultTriggerPriority
	}
	return tr.Priority
}

// Check reports what rpmbuild would refuse in tr, or what this writer
// cannot write.
func (tr FileTrigger) Check() error {
	if tr.Kind < FileTriggerIn || tr.Kind > TransFileTriggerPostUn {
		return fmt.Errorf("file trigger: unknown kind %d", int(tr.Kind))
	}
	if len(tr.Prefixes) == 0 {
		return fmt.Errorf("%%%s: no path prefix", tr.Kind)
	}
	for _, p := range tr.Prefixes {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n\x00") || path.Clean(p) != p {
			return fmt.Errorf("%%%s: path prefix %q is not a clean absolute path", tr.Kind, p)
		}
	}
	if prog := tr.prog(); prog != LuaProg && (!strings.HasPrefix(prog, "/") || strings.ContainsAny(prog, " \t\n\x00")) {
		return fmt.Errorf("%%%s: interpreter %q is neither %s nor an absolute path without arguments", tr.Kind, prog, LuaProg)
	}
	if strings.ContainsRune(tr.Script, 0) {
		return fmt.Errorf("%%%s: the body contains a NUL byte", tr.Kind)
	}
	return nil
}

// Trigger tags (rpm's lib/rpmtag.h), per family: the per-trigger arrays
// and the per-prefix arrays. rpmbuild writes no SCRIPTFLAGS for scripts
// without options.
type triggerTags struct {
	scripts, progs, names, index, versions, flags, priorities uint32
}

var (
	fileTriggerTags  = triggerTags{5066, 5067, 5069, 5070, 5071, 5072, 5084}
	transTriggerTags = triggerTags{5076, 5077, 5079, 5080, 5081, 5082, 5085}
)

// addTriggers writes each family's tags as rpmbuild does: the scripts,
// interpreters and priorities in the order the triggers are declared
// (their index), and the prefixes as an rpm dependency set, sorted by
// name and then flags, each pointing at its trigger by index.
func (h *header) addTriggers(triggers []FileTrigger) {
	for _, family := range []struct {
		trans bool
		tags  triggerTags
	}{{false, fileTriggerTags}, {true, transTriggerTags}} {
		var scripts, progs []string
		var priorities []uint32
		type prefix struct {
			name  string
			flags Sense
			index uint32
		}
		var prefixes []prefix
		for _, tr := range triggers {
			if tr.Kind.transaction() != family.trans {
				continue
			}
			idx := uint32(len(scripts))
			scripts = append(scripts, tr.Script)
			progs = append(progs, tr.prog())
			priorities = append(priorities, tr.priority())
			for _, p := range tr.Prefixes {
				prefixes = append(prefixes, prefix{p, tr.Kind.sense(), idx})
			}
		}
		if len(scripts) == 0 {
			continue
		}
		// Stable: equal prefixes of one kind keep their triggers' order.
		sort.SliceStable(prefixes, func(i, j int) bool {
			a, b := prefixes[i], prefixes[j]
			if a.name != b.name {
				return a.name < b.name
			}
			return a.flags < b.flags
		})
		names := make([]string, len(prefixes))
		versions := make([]string, len(prefixes))
		flags := make([]uint32, len(prefixes))
		index := make([]uint32, len(prefixes))
		for i, p := range prefixes {
			names[i], flags[i], index[i] = p.name, uint32(p.flags), p.index
		}
		h.addStrings(family.tags.scripts, scripts)
		h.addStrings(family.tags.progs, progs)
		h.addStrings(family.tags.names, names)
		h.addInt32(family.tags.index, index...)
		h.addStrings(family.tags.versions, versions)
		h.addInt32(family.tags.flags, flags...)
		h.addInt32(family.tags.priorities, priorities...)
	}
}
