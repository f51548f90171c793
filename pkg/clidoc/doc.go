// Package clidoc renders a command-line program's manual page (roff, for
// man(1)) and its bash, zsh and fish completion scripts from one neutral
// description of its commands and flags.
//
// A program builds its Program from the same table its parser reads, so
// that the manual and the completions cannot drift from what the parser
// accepts. The package uses only the standard library: the helper
// binfmtctl links it, and the helper must stay small and quick to start.
package clidoc
