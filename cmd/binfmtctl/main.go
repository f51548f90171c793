// Command binfmtctl manages binfmt_misc entries one at a time and runs the
// package hooks that rpm scriptlets call. See pkg/binfmtctl.
package main

import (
	"os"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmtctl"
)

func main() { os.Exit(binfmtctl.Run(os.Args[1:], os.Stdout, os.Stderr)) }
