// Command qemu-user-static-go builds the qemu-user-static-go rpm and
// inspects rpm packages that ship binfmt.d files. See pkg/buildtool.
package main

import (
	"os"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
)

func main() { os.Exit(buildtool.Run(os.Args[1:], os.Stdout, os.Stderr)) }
