package inspect

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report for people: identity, checks, relations,
// scriptlets, files, binfmt entries, then the lint's findings.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s\n", printable(r.NEVRA))
	fmt.Fprintf(w, "  file:        %s (%d bytes, rpm format v%d, %s payload)\n", printable(r.File), r.Size, r.Format, printable(r.Compressor))
	fmt.Fprintf(w, "  digests:     header %s OK, payload %s OK, %d file digests OK", r.Digests.Header, r.Digests.Payload, r.Digests.FilesOK)
	if r.Digests.FilesNoHash > 0 {
		fmt.Fprintf(w, ", %d files without a digest", r.Digests.FilesNoHash)
	}
	fmt.Fprintln(w)
	if len(r.Signatures) == 0 {
		fmt.Fprintln(w, "  signatures:  none")
	}
	for _, s := range r.Signatures {
		what := "header and payload"
		if s.HeaderOnly {
			what = "header"
		}
		state := "not verified (no keyring given)"
		if s.Verified {
			state = "verified"
			if s.Signer != "" {
				state += " (" + printable(s.Signer) + ")"
			}
		}
		fmt.Fprintf(w, "  signature:   %s, %s, key %s, %s: %s\n", what, s.Hash, s.KeyID, s.Created.Format("2006-01-02"), state)
	}
	list := func(label string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(w, "  %-12s %s\n", label+":", printable(strings.Join(items, ", ")))
		}
	}
	list("requires", r.Requires)
	list("provides", r.Provides)
	list("conflicts", r.Conflicts)
	list("obsoletes", r.Obsoletes)

	for _, s := range r.Scriptlets {
		fmt.Fprintf(w, "\n%%%s (%s):\n", s.Phase, printable(s.Prog))
		for _, l := range strings.Split(strings.TrimRight(s.Body, "\n"), "\n") {
			fmt.Fprintf(w, "  | %s\n", printableLine(l))
		}
	}

	fmt.Fprintf(w, "\nfiles (%d):\n", len(r.Files))
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	for _, f := range r.Files {
		name := f.Path
		if f.LinkTo != "" {
			name += " -> " + f.LinkTo
		}
		fmt.Fprintf(tw, "  %s\t%s/%s\t%d\t%s\n", modeString(f.Mode), printable(f.Owner), printable(f.Group), f.Size, printable(name))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nbinfmt entries the package would register (%d), checked for a %s host:\n", len(r.Entries), or(r.Host, "unknown"))
	tw = tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	for _, e := range r.Entries {
		what := e.Target
		if what == "" {
			what = "-"
		}
		if len(e.Families) > 0 {
			what += " (family " + strings.Join(e.Families, ", ") + ")"
		}
		flags := e.Flags
		if flags == "" {
			flags = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s:%d\n", printable(e.Name), e.Type, flags, printable(e.Interpreter), what, printable(e.File), e.Line)
	}
	tw.Flush()

	fmt.Fprintln(w)
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "lint: no problems")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "lint: %s\n", printable(p.String()))
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// modeString renders an rpm file mode like ls -l.
func modeString(m uint32) string {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	}
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode.String()
}
