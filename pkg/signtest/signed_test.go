package signtest

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

const (
	pkgName    = "qemu-user-static-go"
	repoID     = "qemu-user-static-go"
	repoKey    = "RPM-GPG-KEY-qemu-user-static-go"
	passphrase = "fleet secret"
	version    = "1.0"
	// cpu is the one interpreter the packages carry: small and fast to
	// build, and any target will do for signatures.
	cpu = "s390x"
)

// signer is an OpenPGP key made for the test, in a temporary GNUPGHOME.
type signer struct {
	home, secret, public string
}

// newSigner makes a passphrase-protected key with gpg 's defaults, as an
// administrator would, and exports it as files.
func newSigner(t *testing.T) signer {
	t.Helper()
	home, err := os.MkdirTemp("", "gpg-")
	if err != nil {
		t.Fatal(err)
	}
	s := signer{home: home, secret: filepath.Join(home, "signing.asc"), public: filepath.Join(home, "public.asc")}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	s.gpg(t, "--quick-gen-key", "Fleet Signer <fleet@example.com>", "default", "default", "never")
	s.gpg(t, "--armor", "--output", s.secret, "--export-secret-keys")
	s.gpg(t, "--armor", "--output", s.public, "--export")
	return s
}

func (s signer) gpg(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", s.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, out)
	}
}

// runMake runs the project's Makefile targets with vars and returns their
// output; the passphrase reaches it the documented way, through
// NFPM_RPM_PASSPHRASE. A var "env:NAME=VALUE" goes into the environment
// instead of the command line, the other documented way.
func runMake(t *testing.T, vars []string, targets ...string) string {
	t.Helper()
	args := append([]string{"-C", "../..", "--no-print-directory"}, targets...)
	args = append(args, "VERSION="+version, "RELEASE=1", "CPUS="+cpu)
	// Nothing of a SIGN_KEY the caller may have exported.
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SIGN_KEY=") {
			env = append(env, e)
		}
	}
	env = append(env, "NFPM_RPM_PASSPHRASE="+passphrase)
	for _, v := range vars {
		if e, ok := strings.CutPrefix(v, "env:"); ok {
			env = append(env, e)
		} else {
			args = append(args, v)
		}
	}
	cmd := exec.Command("make", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v %v: %v\n%s", targets, vars, err, out)
	}
	return string(out)
}

// theRPM returns the one qemu-user-static-go package in dir.
func theRPM(t *testing.T, dir string) string {
	t.Helper()
	rpms, _ := filepath.Glob(filepath.Join(dir, pkgName+"-"+version+"-1.*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("want one %s package in %s, found %v", pkgName, dir, rpms)
	}
	return rpms[0]
}

// allRPMs returns every package in dir: make rpm may write more than one
// (the package and what it requires), and each must be signed.
func allRPMs(t *testing.T, dir string) []string {
	t.Helper()
	rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
	if len(rpms) == 0 {
		t.Fatalf("no packages in %s", dir)
	}
	return rpms
}

// copyFiles copies files into dir, keeping their names.
func copyFiles(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readmeRepo returns the README's .repo example with its baseurl and
// gpgkey pointed at dir, so that the test installs with exactly the
// checks the README tells fleets to turn on.
func readmeRepo(t *testing.T, dir string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```ini\n(# /etc/yum.repos.d/" + pkgName + `\.repo` + "\n.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no ```ini block starting with # /etc/yum.repos.d/%s.repo", pkgName)
	}
	repo := string(m[1])
	for _, want := range []string{"[" + repoID + "]\n", "\ngpgcheck=1\n", "\nrepo_gpgcheck=1\n", "\ngpgkey=", "\nbaseurl="} {
		if !strings.Contains(repo, want) {
			t.Errorf("README's .repo example lacks %q:\n%s", strings.TrimSpace(want), repo)
		}
	}
	repo = regexp.MustCompile(`(?m)^baseurl=.*$`).ReplaceAllString(repo, "baseurl=file://"+dir)
	repo = regexp.MustCompile(`(?m)^gpgkey=.*$`).ReplaceAllString(repo, "gpgkey=file://"+filepath.Join(dir, repoKey))
	return repo
}

// installFromRepo writes the README's .repo file for dir into a reposdir
// and runs dnf install from that repository alone. A stack whose dnf runs
// chrooted in the root (sid's dnf5) gets a copy of the repository and the
// .repo file inside the root, and paths as the root sees them.
func installFromRepo(t *testing.T, r *sandbox.Root, dir string) (string, error) {
	t.Helper()
	reposd := t.TempDir()
	repoDir, reposdIn := dir, reposd
	if r.Stack.Sysroot != "/" {
		repoDir, reposdIn = "/srv/"+filepath.Base(dir), "/etc/signtest.repos.d"
		if out, err := exec.Command("cp", "-a", dir, r.Path(repoDir)).CombinedOutput(); err != nil {
			t.Fatalf("copying the repository into the root: %v\n%s", err, out)
		}
		reposd = r.Path(reposdIn)
		if err := os.MkdirAll(reposd, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(reposd, repoID+".repo"), []byte(readmeRepo(t, repoDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	// dnf5 checks repo_gpgcheck with a keyring of its own per repository,
	// /var/cache/libdnf5/REPO-HASH/pubring, and leaves the gpg-agent it
	// started there running after it exits: stop each, or every run
	// leaves daemons behind on the machine.
	defer func() {
		homes, _ := filepath.Glob(r.Path("/var/cache/libdnf5/*/pubring"))
		for _, h := range homes {
			in := "/" + strings.TrimPrefix(h, r.Dir+"/")
			if out, err := r.Chroot("gpgconf", "--homedir", in, "--kill", "gpg-agent"); err != nil {
				t.Errorf("stopping dnf5's gpg-agent of %s: %v\n%s", in, err, out)
			}
		}
	}()
	// Later options win over DNF's defaults (no repositories at all).
	return r.DNF("--setopt=reposdir="+reposdIn, "--enablerepo="+repoID, "install", pkgName)
}

func installed(t *testing.T, r *sandbox.Root) bool {
	t.Helper()
	_, err := r.RPM("-q", pkgName)
	return err == nil
}

// offsets returns where an rpm file's header and payload start: after the
// 96-byte lead and the signature header, padded to 8 bytes, comes the
// header; the payload follows it.
func offsets(t *testing.T, b []byte) (header, payload int) {
	t.Helper()
	section := func(at int) int {
		if len(b) < at+16 || !bytes.Equal(b[at:at+3], []byte{0x8e, 0xad, 0xe8}) {
			t.Fatalf("no header structure at byte %d", at)
		}
		n := binary.BigEndian.Uint32(b[at+8:])
		size := binary.BigEndian.Uint32(b[at+12:])
		return at + 16 + 16*int(n) + int(size)
	}
	sigEnd := section(96)
	header = (sigEnd + 7) &^ 7
	return header, section(header)
}

// flipped writes a copy of rpm with one bit of the byte at off inverted
// into a new directory, with intact copies of the packages beside rpm,
// and returns the directory.
func flipped(t *testing.T, rpm string, off func(header, payload, size int) int) string {
	t.Helper()
	b, err := os.ReadFile(rpm)
	if err != nil {
		t.Fatal(err)
	}
	h, p := offsets(t, b)
	i := off(h, p, len(b))
	b[i] ^= 0x01
	dir := t.TempDir()
	for _, other := range allRPMs(t, filepath.Dir(rpm)) {
		if other != rpm {
			copyFiles(t, dir, other)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(rpm)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSignedRepository builds the package and its repository with the
// Makefile, as a fleet's release would (make rpm repo SIGN_KEY=...), and
// installs from it with dnf and the README's .repo file: gpgcheck=1 and
// repo_gpgcheck=1 with the exported key. dnf accepts the signed package
// from the signed repository, and refuses a repository without its
// signature, a package with one flipped byte (in its header or its
// payload, in a repository signed after the flip, so only the package's
// own signature can tell) and an unsigned package. rpm -i with
// %_pkgverify_level signature installs the signed package and refuses the
// unsigned one.
//
// It runs on both stacks: the host's dnf 4 and rpm 4.18, and the sid
// root's dnf5 and rpm 6.1.
func TestSignedRepository(t *testing.T) {
	for _, tool := range [][2]string{{"gpg", "gnupg"}, {"make", "make"}, {"createrepo_c", "createrepo-c"}, {"/usr/bin/qemu-" + cpu + "-static", "qemu-user-static"}} {
		sandbox.Require(t, tool[0], tool[1])
	}
	for _, st := range sandbox.Stacks(t) {
		t.Run(st.Name, func(t *testing.T) {
			ns := sandbox.Enter(t)
			if ns == nil {
				return
			}
			signedRepository(t, ns, st)
		})
	}
}

func signedRepository(t *testing.T, ns *sandbox.NS, st sandbox.Stack) {
	key := newSigner(t)
	signKey := "SIGN_KEY=" + key.secret

	signed := t.TempDir()
	// The key from the environment here, on the command line below.
	out := runMake(t, []string{"DIST=" + signed, "env:" + signKey}, "rpm", "repo")
	for _, f := range []string{"repodata/repomd.xml.asc", repoKey} {
		if _, err := os.Stat(filepath.Join(signed, f)); err != nil {
			t.Fatalf("make rpm repo SIGN_KEY=... wrote no %s: %v\n%s", f, err, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(signed, "repodata/repomd.xml.asc")); !bytes.HasPrefix(b, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Errorf("repomd.xml.asc is not an armored signature: %.60q", b)
	}
	// The signature verifies against the exported key alone (gpgv reads
	// binary keyrings only).
	keyring := filepath.Join(t.TempDir(), "keyring.gpg")
	if out, err := exec.Command("gpg", "--batch", "--output", keyring, "--dearmor", filepath.Join(signed, repoKey)).CombinedOutput(); err != nil {
		t.Fatalf("gpg --dearmor %s: %v\n%s", repoKey, err, out)
	}
	if out, err := exec.Command("gpgv", "--keyring", keyring,
		filepath.Join(signed, "repodata/repomd.xml.asc"), filepath.Join(signed, "repodata/repomd.xml")).CombinedOutput(); err != nil {
		t.Errorf("gpgv of repomd.xml.asc with %s: %v\n%s", repoKey, err, out)
	}
	signedRPM := theRPM(t, signed)

	unsigned := t.TempDir()
	runMake(t, []string{"DIST=" + unsigned}, "rpm")
	for _, p := range allRPMs(t, unsigned) {
		if out, err := exec.Command("rpm", "-qp", "--qf", "%{SIGPGP:pgpsig}%{RSAHEADER:pgpsig}%{DSAHEADER:pgpsig}", p).CombinedOutput(); err != nil || strings.Contains(string(out), "Key ID") {
			t.Fatalf("%s, built without SIGN_KEY, is signed or unreadable (%v): %s", filepath.Base(p), err, out)
		}
	}
	for _, p := range allRPMs(t, signed) {
		if out, err := exec.Command("rpm", "-qp", "--qf", "%{SIGPGP:pgpsig}%{RSAHEADER:pgpsig}%{DSAHEADER:pgpsig}", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "Key ID") {
			t.Fatalf("%s, built with SIGN_KEY, is not signed (%v): %s", filepath.Base(p), err, out)
		}
	}
	// The unsigned package, in a repository signed with the right key.
	runMake(t, []string{"DIST=" + unsigned, signKey}, "repo")

	// Each tampered package, in a repository made and signed after the
	// tampering: the repository's checksums match it, so dnf's package
	// signature check is what must refuse it.
	flipHeader := flipped(t, signedRPM, func(h, p, _ int) int { return h + (p-h)/2 })
	flipPayload := flipped(t, signedRPM, func(_, p, size int) int { return p + (size-p)/2 })
	for _, d := range []string{flipHeader, flipPayload} {
		runMake(t, []string{"DIST=" + d, signKey}, "repo")
	}

	// The signed package in a repository whose repomd.xml is not signed:
	// repo_gpgcheck=1 must refuse the repository.
	nosig := t.TempDir()
	copyFiles(t, nosig, append(allRPMs(t, signed), filepath.Join(signed, repoKey))...)
	runMake(t, []string{"DIST=" + nosig}, "repo")
	if _, err := os.Stat(filepath.Join(nosig, "repodata/repomd.xml.asc")); err == nil {
		t.Fatalf("make repo without SIGN_KEY left a repomd.xml.asc")
	}

	t.Run("dnf installs the signed package from the signed repository", func(t *testing.T) {
		r := ns.DNFRootOn(st)
		out, err := installFromRepo(t, r, signed)
		if err != nil || !installed(t, r) {
			t.Fatalf("dnf install from the signed repository: %v\n%s", err, out)
		}
		t.Logf("dnf:\n%s", out)
	})

	// How each dnf says that a package failed its signature check.
	checkFailed := "GPG check FAILED"
	if st.DNF5 {
		checkFailed = "Signature verification failed"
	}
	refused := []struct {
		name, dir string
		want      []string // all of these in dnf's output
	}{
		{"unsigned package", unsigned, []string{"is not signed"}},
		{"flipped header byte", flipHeader, []string{checkFailed}},
		{"flipped payload byte", flipPayload, []string{checkFailed}},
		{"unsigned repomd.xml", nosig, []string{"GPG signature is not available"}},
	}
	for _, c := range refused {
		t.Run("dnf refuses "+c.name, func(t *testing.T) {
			r := ns.DNFRootOn(st)
			out, err := installFromRepo(t, r, c.dir)
			if err == nil || installed(t, r) {
				t.Fatalf("dnf installed from the repository with the %s (error %v)\n%s", c.name, err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("dnf failed, but not saying %q:\n%s", w, out)
				}
			}
			t.Logf("dnf refused:\n%s", out)
		})
	}

	t.Run("rpm -i with _pkgverify_level signature", func(t *testing.T) {
		r := ns.DNFRootOn(st)
		verify := []string{"--define", "_pkgverify_level signature"}
		if out, err := r.RPM(append(append(verify, "-i", "--test"), allRPMs(t, signed)...)...); err == nil {
			t.Errorf("rpm -i accepted the signed package before its key was imported\n%s", out)
		}
		if out, err := r.RPM("--import", filepath.Join(signed, repoKey)); err != nil {
			t.Fatalf("rpm --import %s: %v\n%s", repoKey, err, out)
		}
		out, err := r.RPM(append(append(verify, "-i"), allRPMs(t, unsigned)...)...)
		if err == nil || installed(t, r) {
			t.Fatalf("rpm -i installed the unsigned package (error %v)\n%s", err, out)
		}
		if !strings.Contains(out, "no signature") {
			t.Errorf("rpm -i refused the unsigned package, but not saying \"no signature\":\n%s", out)
		}
		if out, err := r.RPM(append(append(verify, "-i"), allRPMs(t, signed)...)...); err != nil || !installed(t, r) {
			t.Fatalf("rpm -i of the signed package after importing its key: %v\n%s", err, out)
		}
	})
}
