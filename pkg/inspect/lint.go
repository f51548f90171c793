package inspect

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

func (r *Report) problem(s Severity, file, msg string) {
	r.Problems = append(r.Problems, Problem{Severity: s, File: file, Message: msg})
}

// lint parses the binfmt.d files and checks the entries and scriptlets.
func (r *Report) lint() {
	r.parseConfs()
	r.checkEntries()
	r.checkScriptlets()
}

func (r *Report) checkEntries() {
	shipped := map[string]bool{}
	for _, f := range r.Files {
		if t := f.Mode & 0o170000; t == 0o100000 || t == 0o120000 {
			shipped[f.Path] = true
		}
	}
	required := map[string]bool{}
	for _, req := range r.Requires {
		name, _, _ := strings.Cut(req, " ")
		required[name] = true
	}
	hostCPU, hostFamily := qemu.HostCPU(r.Host), qemu.HostFamily(r.Host)
	targets := qemu.Targets()
	byName := map[string]string{}
	for i := range r.Entries {
		e := &r.Entries[i]
		where := fmt.Sprintf("%s:%d", e.File, e.Line)
		if prev, ok := byName[e.Name]; ok {
			r.problem(SeverityWarning, e.File, fmt.Sprintf("line %d: entry %s is also defined at %s; systemd-binfmt applies the last one", e.Line, e.Name, prev))
		}
		byName[e.Name] = where

		e.Shipped, e.Required = shipped[e.Interpreter], required[e.Interpreter]
		if !e.Shipped && !e.Required {
			if strings.Contains(e.Flags, "F") {
				r.problem(SeverityError, e.File, fmt.Sprintf("line %d: entry %s has flag F, but its interpreter %s is neither in the package nor required by it, so registering it fails", e.Line, e.Name, e.Interpreter))
			} else {
				r.problem(SeverityWarning, e.File, fmt.Sprintf("line %d: entry %s runs %s, which is neither in the package nor required by it", e.Line, e.Name, e.Interpreter))
			}
		}

		if e.Type != string(rune(binfmt.TypeMagic)) {
			continue
		}
		magic, mask := unhex(e.Magic), unhex(e.Mask)
		families := map[string]bool{}
		var native []string
		for _, t := range targets {
			if e.Offset == 0 && bytes.Equal(magic, t.Magic) && bytes.Equal(mask, t.Mask) {
				e.Target = t.CPU
			}
			if !overlaps(e.Offset, magic, mask, t) {
				continue
			}
			families[t.Family] = true
			if t.Family == hostFamily || t.Emulator() == hostCPU {
				native = append(native, t.CPU)
			}
		}
		for f := range families {
			e.Families = append(e.Families, f)
		}
		sort.Strings(e.Families)
		if len(native) > 0 && r.Host != "" {
			r.problem(SeverityError, e.File, fmt.Sprintf("line %d: entry %s matches %s programs, which a %s host runs natively; registering it would send them through %s", e.Line, e.Name, strings.Join(native, ", "), r.Host, e.Interpreter))
		}
	}
}

// unhex decodes what parseConfs encoded; "" (no mask) gives nil.
func unhex(s string) []byte {
	b, _ := hex.DecodeString(s)
	if len(b) == 0 {
		return nil
	}
	return b
}

// overlaps reports whether some file matches both the entry (magic and
// mask at offset) and target t (at offset 0). A byte can satisfy both
// unless the two magics differ in a bit that both masks keep; a missing
// mask keeps every bit.
func overlaps(offset int, magic, mask []byte, t qemu.Target) bool {
	for i := range magic {
		p := offset + i
		if p >= len(t.Magic) {
			break
		}
		m := byte(0xff)
		if mask != nil {
			m = mask[i]
		}
		if (magic[i]^t.Magic[p])&m&t.Mask[p] != 0 {
			return false
		}
	}
	return true
}

// What scriptlets do to binfmt_misc, recognised by the commands that do
// it. It is a heuristic; it looks at commands, not at what the shell
// would run.
var (
	// Registering: systemd-binfmt (directly, as %binfmt_apply expands,
	// or through systemctl), binfmtctl, a write to the register file,
	// Debian's update-binfmts.
	registerRe = regexp.MustCompile(`systemd-binfmt|\bbinfmtctl\b[^\n;&|]*\b(hook\s+['"]?post\b|register\b|sync\b)|binfmt_misc/register|\bupdate-binfmts\b[^\n;&|]*--(enable|import|install)\b`)
	// Unregistering: binfmtctl's erase hooks or unregister, a "-1"
	// written to an entry, update-binfmts --disable/--remove, or
	// systemd-binfmt --unregister (which removes every entry).
	unregisterRe = regexp.MustCompile(`\bbinfmtctl\b[^\n;&|]*\b(hook\s+['"]?(preun|postun)\b|unregister\b|prune\b)|\b(echo|printf)\s+['"]?-1['"]?[^\n]*>|\bupdate-binfmts\b[^\n;&|]*--(disable|remove|uninstall)\b|systemd-binfmt\b[^\n;&|]*--unregister`)
	flushRe      = regexp.MustCompile(`systemd-binfmt\b[^\n;&|]*--unregister`)
)

func (r *Report) checkScriptlets() {
	body := map[string]string{}
	for _, s := range r.Scriptlets {
		body[s.Phase] = s.Body
	}
	registers := registerRe.FindString(body["post"])
	unregisters := ""
	for _, phase := range []string{"preun", "postun"} {
		if m := unregisterRe.FindString(body[phase]); m != "" {
			unregisters = m
			if flushRe.MatchString(body[phase]) {
				r.problem(SeverityWarning, "%"+phase, "systemd-binfmt --unregister removes every binfmt_misc entry on the machine, not only this package's")
			}
		}
	}
	switch {
	case registers != "" && unregisters == "":
		r.problem(SeverityError, "%post", fmt.Sprintf("registers binfmt entries (%q) but neither %%preun nor %%postun unregisters them, so they stay registered after the package is removed", firstLine(registers)))
	case registers == "" && len(r.Confs) > 0:
		r.problem(SeverityWarning, "%post", "the package ships binfmt.d files but %post does not register them; they take effect at the next boot")
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
