package rpmfile

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Sense is rpm's rpmsenseFlags (include/rpm/rpmds.h): how a dependency's
// version compares, and in which context it is needed.
type Sense uint32

// The rpmsenseFlags this package writes.
const (
	SenseLess    Sense = 1 << 1
	SenseGreater Sense = 1 << 2
	SenseEqual   Sense = 1 << 3
	// SensePostTrans and the SenseScript* flags qualify a requirement
	// with the scriptlet that needs it: Requires(post) is SenseScriptPost.
	SensePostTrans     Sense = 1 << 5
	SensePreTrans      Sense = 1 << 7
	SenseInterp        Sense = 1 << 8
	SenseScriptPre     Sense = 1 << 9
	SenseScriptPost    Sense = 1 << 10
	SenseScriptPreun   Sense = 1 << 11
	SenseScriptPostun  Sense = 1 << 12
	SenseScriptVerify  Sense = 1 << 13
	SenseFindRequires  Sense = 1 << 14
	SenseFindProvides  Sense = 1 << 15
	SenseTriggerIn     Sense = 1 << 16
	SenseTriggerUn     Sense = 1 << 17
	SenseTriggerPostun Sense = 1 << 18
	SenseRPMLib        Sense = 1 << 24
)

// Dependency is one entry of a dependency list: a name (a package, a
// capability, a path, or a rich dependency in parentheses), a version
// and rpm's sense flags.
type Dependency struct {
	Name, Version string
	Flags         Sense
}

func (d Dependency) String() string {
	if d.Version == "" {
		return fmt.Sprintf("%s (%#x)", d.Name, uint32(d.Flags))
	}
	return fmt.Sprintf("%s %s (%#x)", d.Name, d.Version, uint32(d.Flags))
}

// Context flags of Requires(CONTEXT) in a spec file, as rpmbuild's
// parsePreamble maps them.
var contexts = map[string]Sense{
	"pre":       SenseScriptPre,
	"post":      SenseScriptPost,
	"preun":     SenseScriptPreun,
	"postun":    SenseScriptPostun,
	"pretrans":  SensePreTrans,
	"posttrans": SensePostTrans,
	"verify":    SenseScriptVerify,
	"interp":    SenseInterp,
}

// ParseRequirement reads one requirement as a spec file writes it:
// "NAME [OP VERSION]", optionally qualified as "(post,preun) NAME": the
// contexts in parentheses first, for Requires(post,preun): NAME.
func ParseRequirement(s string) (Dependency, error) {
	s = strings.TrimSpace(s)
	var flags Sense
	if strings.HasPrefix(s, "(") {
		if end := strings.Index(s, ")"); end > 0 && !strings.ContainsAny(s[1:end], " \t(") {
			for _, c := range strings.Split(s[1:end], ",") {
				f, ok := contexts[strings.TrimSpace(c)]
				if !ok {
					return Dependency{}, fmt.Errorf("parsing requirement %q: unknown context %q (known: pre, post, preun, postun, pretrans, posttrans, verify, interp)", s, c)
				}
				flags |= f
			}
			s = strings.TrimSpace(s[end+1:])
		}
	}
	r, err := parseRelation(s)
	if err != nil {
		return Dependency{}, err
	}
	return Dependency{Name: r.name, Version: r.version, Flags: Sense(r.flags) | flags}, nil
}

// rpmlib features (rpm's lib/rpmds.c rpmlibprovides), with the version
// rpmbuild requires them at.
var rpmlibFeatures = map[string]string{
	"BuiltinLuaScripts":      "4.2.2-1",
	"CaretInVersions":        "4.15.0-1",
	"CompressedFileNames":    "3.0.4-1",
	"FileDigests":            "4.6.0-1",
	"PayloadFilesHavePrefix": "4.0-1",
	"PayloadIsZstd":          "5.4.18-1",
	"RichDependencies":       "4.12.0-1",
	"TildeInVersions":        "4.10.0-1",
}

func rpmlib(feature string) Dependency {
	return Dependency{Name: "rpmlib(" + feature + ")", Version: rpmlibFeatures[feature], Flags: SenseRPMLib | SenseLess | SenseEqual}
}

// isaNames is rpm's %{_isa} per architecture, %__isa_name-%__isa_bits of
// rpm's platform macros (/usr/lib/rpm/platform/ARCH-linux/macros), for the
// architectures a package of this project can have.
var isaNames = map[string]string{
	"x86_64":      "x86-64",
	"i386":        "x86-32",
	"i686":        "x86-32",
	"aarch64":     "aarch-64",
	"armv7hl":     "armv7hl-32",
	"ppc64le":     "ppc-64",
	"ppc64":       "ppc-64",
	"s390x":       "s390-64",
	"riscv64":     "riscv-64",
	"loongarch64": "loongarch64-64",
	"mips64el":    "mips-64",
}

// macroFile is where rpm's rpm_macro.attr generator looks: a file matching
// %{_rpmmacrodir}/macros\..* .
var macroFile = regexp.MustCompile(`^/usr/lib/rpm/macros\.d/macros\..*$`)

// macroDefinition is the start of a definition in a macros file: %NAME,
// optional (OPTIONS), then the body.
var macroDefinition = regexp.MustCompile(`^%([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?[ \t]+\s*\S`)

// MacroNames lists the macros a macros file defines, as rpm's
// rpm_macros_provides.sh finds them (`rpm --macros=FILE -E %dump`, the
// file's own definitions): one logical line per definition, continued by a
// backslash at the end of a line, leading blanks skipped; names starting
// with "__" are private and left out. The names are sorted and unique.
func MacroNames(data []byte) []string {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	var logical strings.Builder
	flush := func() {
		line := strings.TrimLeft(logical.String(), " \t")
		logical.Reset()
		m := macroDefinition.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "__") {
			return
		}
		seen[m[1]] = true
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, "\\") {
			logical.WriteString(strings.TrimSuffix(line, "\\"))
			logical.WriteString("\n")
			continue
		}
		logical.WriteString(line)
		flush()
	}
	if logical.Len() > 0 {
		flush()
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sortDeps sorts a dependency list the way rpmbuild stores it (rpm's
// rpmds sets: by name, then version, then flags, byte-wise) and drops
// exact duplicates.
func sortDeps(ds []Dependency) []Dependency {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Flags < b.Flags
	})
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (h *header) addDeps(nameTag, versionTag, flagsTag uint32, ds []Dependency) {
	if len(ds) == 0 {
		return
	}
	names := make([]string, len(ds))
	versions := make([]string, len(ds))
	flags := make([]uint32, len(ds))
	for i, d := range ds {
		names[i], versions[i], flags[i] = d.Name, d.Version, uint32(d.Flags)
	}
	h.addStrings(nameTag, names)
	h.addStrings(versionTag, versions)
	h.addInt32(flagsTag, flags...)
}

// needsVersionFeatures adds the rpmlib features that a version string
// uses (rpmbuild checks every dependency's version, the package's own
// provide included).
func versionFeatures(versions ...string) []Dependency {
	var out []Dependency
	for _, v := range versions {
		if strings.Contains(v, "~") {
			out = append(out, rpmlib("TildeInVersions"))
		}
		if strings.Contains(v, "^") {
			out = append(out, rpmlib("CaretInVersions"))
		}
	}
	return out
}

// isMacroFile reports whether rpm's rpm_macro generator reads name.
func isMacroFile(name string) bool {
	return macroFile.MatchString(path.Clean(name))
}
