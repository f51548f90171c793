// Package buildtool is the command line of qemu-user-static-go: build the
// package, inspect any rpm, and generate binfmt.d files. Each subcommand
// checks its flags and makes one call into pkg/assemble, pkg/inspect or
// pkg/qemu.
//
// Exit codes: 0 success, 1 the command ran and failed (lint problems
// included), 2 the command line was wrong. Help asked for goes to standard
// output; usage errors go to standard error.
package buildtool
