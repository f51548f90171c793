// Command qemu-user-static-go builds the qemu-user-static-go rpm and
// inspects rpm packages that ship binfmt.d files. See pkg/rpmbuild/cli.
package main

import (
	"os"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/rpmbuild/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)) }
