package clidoc

import (
	"bufio"
	"io"
	"strings"
)

// WriteManual writes p's manual page as roff, for man(1). The date is left
// out, so that the same description gives the same bytes.
func (p *Program) WriteManual(w io.Writer) error {
	if err := p.Check(); err != nil {
		return err
	}
	b := bufio.NewWriter(w)
	section := p.Section
	if section == "" {
		section = "1"
	}
	title := "User Commands"
	if section == "8" {
		title = "System Administration"
	}
	footer := p.Name
	if p.Version != "" {
		footer += " " + p.Version
	}
	line(b, `.TH `, strings.ToUpper(p.Name), ` `, section, ` "" "`, RoffQuoted(footer), `" "`, title, `"`)
	line(b, `.SH NAME`)
	line(b, roff(p.Name), ` \- `, roffText(p.Summary))

	line(b, `.SH SYNOPSIS`)
	syn := p.Synopsis
	if len(syn) == 0 {
		syn = []string{"[FLAGS] COMMAND [ARGS]"}
		if len(p.Commands) == 0 {
			syn = []string{"[FLAGS] [ARGS]"}
		}
	}
	for i, s := range syn {
		if i > 0 {
			line(b, `.br`)
		}
		line(b, `.B `, roff(p.Name))
		line(b, roffText(s))
	}

	if p.Description != "" {
		line(b, `.SH DESCRIPTION`)
		paragraphs(b, p.Description)
	}

	if len(p.Commands) > 0 {
		line(b, `.SH COMMANDS`)
		for _, c := range p.Commands {
			line(b, `.TP`)
			head := `\fB` + roff(c.Name) + `\fR`
			if len(c.Flags) > 0 {
				head += ` [\fIFLAGS\fR]`
			}
			if c.Args != "" {
				head += ` \fI` + roff(c.Args) + `\fR`
			}
			line(b, head)
			line(b, roffText(c.Summary))
			if c.Description != "" {
				line(b, `.IP`)
				paragraphsIn(b, c.Description, `.IP`)
			}
			if len(c.Flags) > 0 {
				line(b, `.RS`)
				for _, f := range c.Flags {
					flagItem(b, f)
				}
				line(b, `.RE`)
			}
		}
	}

	if len(p.Flags) > 0 {
		line(b, `.SH OPTIONS`)
		line(b, `These flags are accepted before the command and after it.`)
		for _, f := range p.Flags {
			flagItem(b, f)
		}
	}

	for _, s := range p.Sections {
		line(b, `.SH `, roff(strings.ToUpper(s.Title)))
		paragraphs(b, s.Body)
	}
	return b.Flush()
}

func flagItem(b *bufio.Writer, f Flag) {
	line(b, `.TP`)
	head := `\fB\-\-` + roff(f.Name) + `\fR`
	if f.Short != "" {
		head = `\fB\-` + roff(f.Short) + `\fR, ` + head
	}
	if f.Arg != "" {
		head += ` \fI` + roff(f.Arg) + `\fR`
	}
	line(b, head)
	u := f.Usage
	if f.Default != "" {
		u += " (default: " + f.Default + ")"
	}
	line(b, roffText(u))
}

// paragraphs sets text: paragraphs separated by blank lines; a paragraph
// whose lines are indented by two spaces is a list of "TERM  TEXT" items.
func paragraphs(b *bufio.Writer, text string) { paragraphsIn(b, text, `.PP`) }

func paragraphsIn(b *bufio.Writer, text, sep string) {
	// Only newlines are trimmed: a list's first line starts with two
	// spaces too.
	for i, para := range strings.Split(strings.Trim(text, "\n"), "\n\n") {
		if strings.HasPrefix(para, "  ") {
			for _, l := range strings.Split(para, "\n") {
				term, desc, _ := strings.Cut(strings.TrimSpace(l), "  ")
				line(b, `.TP`)
				line(b, `\fB`, roff(term), `\fR`)
				line(b, roffText(strings.TrimSpace(desc)))
			}
			continue
		}
		if i > 0 {
			line(b, sep)
		}
		for _, l := range strings.Split(para, "\n") {
			line(b, roffText(strings.TrimSpace(l)))
		}
	}
}

func line(b *bufio.Writer, parts ...string) {
	for _, p := range parts {
		b.WriteString(p)
	}
	b.WriteByte('\n')
}

// roff escapes s for use inside a roff line: backslashes, and hyphens,
// which roff would otherwise set as typographic hyphens that cannot be
// copied into a shell.
func roff(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\e`)
		case '-':
			b.WriteString(`\-`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffText escapes a whole text line: also a leading '.' or '\”, which
// roff would read as a request.
func roffText(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// RoffQuoted escapes s for a double-quoted macro argument, as the
// manual's header quotes the version.
func RoffQuoted(s string) string {
	return strings.ReplaceAll(roff(s), `"`, `""`)
}
