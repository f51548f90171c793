package buildtool_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/goreleaser/nfpm/v2"
	nfpmrpm "github.com/goreleaser/nfpm/v2/rpm"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/buildtool"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"qemu-user-static-go": func() { os.Exit(buildtool.Run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// helper builds binfmtctl into dir and returns it and the source
// directory it was built from.
func helper(dir string) (bin, src string, err error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	if src, err = assemble.FindSourceDir(wd); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "binfmtctl")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/binfmtctl")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("building binfmtctl: %v\n%s", err, out)
	}
	return bin, src, nil
}

// rpmArch is the rpm architecture of this machine's interpreters.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}

func TestScripts(t *testing.T) {
	for _, cpu := range []string{"s390x", "riscv64"} {
		if _, err := os.Stat("/usr/bin/qemu-" + cpu + "-static"); err != nil {
			t.Fatalf("missing /usr/bin/qemu-%s-static: install with `apt-get install -y qemu-user-static`", cpu)
		}
	}
	bin, sourceDir, err := helper(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("BINFMTCTL", bin)
			env.Setenv("SOURCE_DIR", sourceDir)
			env.Setenv("ARCH", rpmArch[runtime.GOARCH])
			env.Setenv("SOURCE_DATE_EPOCH", "1700000000")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkrpm": mkrpm,
		},
	})
}

// mkrpm SPEC OUT builds an rpm with nfpm from an nfpm definition in the
// script's work directory, for packages that are not ours.
func mkrpm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkrpm SPEC OUT")
	}
	cfg, err := nfpm.ParseFile(ts.MkAbs(args[0]))
	ts.Check(err)
	info, err := cfg.Get("rpm")
	ts.Check(err)
	// nfpm reads relative sources from the process's directory, which
	// is not the script's.
	for _, c := range info.Contents {
		if c.Source != "" && c.Type != "symlink" {
			c.Source = ts.MkAbs(c.Source)
		}
	}
	for _, p := range []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *p != "" {
			*p = ts.MkAbs(*p)
		}
	}
	f, err := os.Create(ts.MkAbs(args[1]))
	ts.Check(err)
	defer f.Close()
	ts.Check(nfpmrpm.DefaultRPM.Package(nfpm.WithDefaults(info), f))
}
