package inspect_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// sidBuilt are packages rpm 6.1's rpmbuild wrote in the sid root, copied
// out to the host.
type sidBuilt struct {
	v6, v4       string // the same spec, %_rpmformat 6 (sid's default) and 4
	v6Signed     string // v6, then rpmsign --addsign with the key below
	publicKey    string // the signing key, armored
	rpmKv6Signed string // rpm -K -v of v6Signed in the sid root, after importing the key
}

// v6Spec is a package like Fedora's qemu-user-static-<cpu>: an
// interpreter, its binfmt.d file (the generator's), and scriptlets. It
// is written out by %install from what the spec carries, so rpmbuild
// needs no sources.
func v6Spec(confData []byte) string {
	return `Name: qemu-user-static-s390x
Version: 9.0
Release: 1
Summary: a stand-in qemu-user-static package
License: MIT
BuildArch: x86_64
Requires: /bin/sh

%description
A stand-in for a qemu-user-static package, to be inspected.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/binfmt.d
printf '\177ELF stand-in' >%{buildroot}/usr/bin/qemu-s390x-static
chmod 755 %{buildroot}/usr/bin/qemu-s390x-static
cat >%{buildroot}/usr/lib/binfmt.d/qemu-s390x-static.conf <<'EOF'
` + string(confData) + `EOF

%post
/usr/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-s390x-static.conf || :

%files
/usr/bin/qemu-s390x-static
/usr/lib/binfmt.d/qemu-s390x-static.conf
`
}

// buildOnSid builds v6Spec with the sid root's rpmbuild (v6, and v4 for
// comparison), signs a copy of the v6 package with rpmsign and a gpg key
// made in the root, and copies everything out into a host directory.
func buildOnSid(t *testing.T, r *sandbox.Root, confData []byte) sidBuilt {
	t.Helper()
	top := "/root/build"
	if err := os.MkdirAll(r.Path(top+"/SPECS"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Path(top+"/SPECS/p.spec"), []byte(v6Spec(confData)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var b sidBuilt
	for _, f := range []struct {
		format string
		dst    *string
	}{{"6", &b.v6}, {"4", &b.v4}} {
		topdir := top + "/v" + f.format
		if o, err := r.Chroot("rpmbuild", "-bb", "--define", "_topdir "+topdir, "--define", "_rpmformat "+f.format,
			"--define", "_binary_payload w19.zstdio", top+"/SPECS/p.spec"); err != nil {
			t.Fatalf("rpmbuild (format %s) in the sid root: %v\n%s", f.format, err, o)
		}
		rpms, _ := filepath.Glob(r.Path(topdir + "/RPMS/x86_64/*.rpm"))
		if len(rpms) != 1 {
			t.Fatalf("rpmbuild (format %s) wrote %v", f.format, rpms)
		}
		*f.dst = filepath.Join(out, "v"+f.format+".rpm")
		copyOut(t, rpms[0], *f.dst)
	}

	// Signing: a gpg key in the root, rpmsign --addsign, rpm -K.
	gpg := func(args ...string) string {
		t.Helper()
		o, err := r.Chroot("gpg", append([]string{"--homedir", "/root/gnupg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if err != nil {
			t.Fatalf("gpg %v in the sid root: %v\n%s", args, err, o)
		}
		return o
	}
	if err := os.MkdirAll(r.Path("/root/gnupg"), 0o700); err != nil {
		t.Fatal(err)
	}
	// gpg starts a gpg-agent that outlives the test unless told to go;
	// left running, it keeps the root's mounts alive after the namespace.
	t.Cleanup(func() {
		if o, err := r.Chroot("gpgconf", "--homedir", "/root/gnupg", "--kill", "gpg-agent"); err != nil {
			t.Logf("stopping the gpg-agent in the sid root: %v\n%s", err, o)
		}
	})
	gpg("--quick-gen-key", "V6 Signer <v6@example.com>", "default", "default", "never")
	gpg("--armor", "--output", "/root/pub.asc", "--export")
	b.publicKey = filepath.Join(out, "pub.asc")
	copyOut(t, r.Path("/root/pub.asc"), b.publicKey)
	signed := top + "/signed.rpm"
	copyOut(t, b.v6, r.Path(signed))
	if o, err := r.Chroot("rpmsign", "--define", "_gpg_path /root/gnupg", "--define", "_openpgp_sign_id V6 Signer",
		"--define", "_gpg_name V6 Signer", "--addsign", signed); err != nil {
		t.Fatalf("rpmsign --addsign in the sid root: %v\n%s", err, o)
	}
	if o, err := r.RPM("--import", "/root/pub.asc"); err != nil {
		t.Fatalf("rpm --import in the sid root: %v\n%s", err, o)
	}
	o, err := r.RPM("-Kv", signed)
	if err != nil {
		t.Fatalf("rpm -Kv of the signed v6 package in the sid root: %v\n%s", err, o)
	}
	b.rpmKv6Signed = o
	b.v6Signed = filepath.Join(out, "v6-signed.rpm")
	copyOut(t, r.Path(signed), b.v6Signed)
	if keep := os.Getenv("INSPECT_V6_KEEP"); keep != "" {
		for _, p := range []string{b.v6, b.v4, b.v6Signed, b.publicKey} {
			copyOut(t, p, filepath.Join(keep, filepath.Base(p)))
		}
	}
	return b
}

func copyOut(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reportOf inspects path, failing the test on an error.
func reportOf(t *testing.T, path string, opts inspect.Options) *inspect.Report {
	t.Helper()
	rep, err := inspect.File(path, opts)
	if err != nil {
		t.Fatalf("inspect %s: %v", filepath.Base(path), err)
	}
	return rep
}

// comparable is what a report says about the package itself, which must
// not depend on the format it is written in: everything but the file,
// its size, format, digests, signatures and rpmlib() requirements (v6
// adds rpmlib(LargeFiles), its file sizes always being 64-bit).
func comparable(r *inspect.Report) *inspect.Report {
	c := *r
	c.File, c.Size, c.Format, c.Digests, c.Signatures = "", 0, 0, inspect.Digests{}, nil
	c.Requires = nil
	for _, req := range r.Requires {
		if !strings.HasPrefix(req, "rpmlib(") {
			c.Requires = append(c.Requires, req)
		}
	}
	return &c
}

// TestV6 inspects v6 packages that rpm 6.1's rpmbuild builds in the sid
// root, unsigned and signed with rpmsign: digests, signatures, header,
// payload and the binfmt lint come out as for the same spec built as v4,
// and damage is found where rpm 6.1's rpm -K finds it.
func TestV6(t *testing.T) {
	st := sandbox.SidStack(t)
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	r := ns.DNFRootOn(st)
	b := buildOnSid(t, r, conf(t, "s390x"))

	v6 := reportOf(t, b.v6, inspect.Options{})
	v4 := reportOf(t, b.v4, inspect.Options{})
	if v6.Format != 6 || v4.Format != 4 {
		t.Errorf("formats %d and %d, want 6 (sid's default) and 4 (%%_rpmformat 4)", v6.Format, v4.Format)
	}
	// Every digest rpm 6.1 wrote was checked.
	if v6.Digests.Header != "SHA256, SHA3-256" || v6.Digests.Payload != "SHA256, SHA512, SHA3-256" || v6.Digests.FilesOK != 2 {
		t.Errorf("v6 digests %+v, want header SHA256 and SHA3-256, payload SHA256, SHA512 and SHA3-256, 2 files", v6.Digests)
	}
	if len(v6.Signatures) != 0 {
		t.Errorf("unsigned v6 package: signatures %+v", v6.Signatures)
	}
	if d, c := comparable(v6), comparable(v4); !reflect.DeepEqual(d, c) {
		j6, _ := json.MarshalIndent(d, "", " ")
		j4, _ := json.MarshalIndent(c, "", " ")
		t.Errorf("the v6 package reads differently from the v4 one\nv6: %s\nv4: %s", j6, j4)
	}
	// Header and payload: the entry, from the binfmt.d file read out of
	// the stripped cpio payload, and the lint on it and on %post.
	if len(v6.Entries) != 1 || v6.Entries[0].Name != "qemu-s390x" || v6.Entries[0].Target != "s390x" || !v6.Entries[0].Shipped {
		t.Errorf("v6 entries %+v, want qemu-s390x with the s390x target's magic, interpreter shipped", v6.Entries)
	}
	if !strings.Contains(problems(v6, inspect.SeverityError), "neither %preun nor %postun unregisters them") {
		t.Errorf("the lint did not find the %%post that never unregisters; errors:\n%s", problems(v6, inspect.SeverityError))
	}

	// Signed: listed without a keyring, verified with the signer's key,
	// refused with another key only.
	unverified := reportOf(t, b.v6Signed, inspect.Options{})
	keys, err := inspect.ReadKeyring(b.publicKey)
	if err != nil {
		t.Fatal(err)
	}
	signed := reportOf(t, b.v6Signed, inspect.Options{Keyring: keys})
	fpr := regexp.MustCompile(`OpenPGP V4 \S+ signature, key fingerprint: ([0-9a-f]{40}): OK`).FindStringSubmatch(b.rpmKv6Signed)
	if fpr == nil {
		t.Fatalf("rpm -Kv in the sid root shows no verified OpenPGP signature:\n%s", b.rpmKv6Signed)
	}
	for _, rep := range []*inspect.Report{unverified, signed} {
		if len(rep.Signatures) != 1 || !strings.HasSuffix(fpr[1], rep.Signatures[0].KeyID) || !rep.Signatures[0].HeaderOnly {
			t.Fatalf("signatures %+v, want one header signature by the key rpm -Kv names, %s", rep.Signatures, fpr[1])
		}
	}
	if unverified.Signatures[0].Verified || !signed.Signatures[0].Verified || signed.Signatures[0].Signer != "V6 Signer <v6@example.com>" {
		t.Errorf("without a keyring %+v, with the key %+v", unverified.Signatures[0], signed.Signatures[0])
	}
	other, err := inspect.ReadKeyring(otherKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inspect.File(b.v6Signed, inspect.Options{Keyring: other}); err == nil || !strings.Contains(err.Error(), "not in the keyring") {
		t.Errorf("inspect with another key: %v, want \"not in the keyring\"", err)
	}

	// Damage, one byte at a time, in each part: inspect fails where rpm
	// 6.1 does, and says which part.
	data, err := os.ReadFile(b.v6Signed)
	if err != nil {
		t.Fatal(err)
	}
	sig, hdr, payload := offsets(t, data)
	sigText := bytes.Index(data[sig:hdr], []byte("iQ")) // the base64 OpenPGP signature
	if sigText < 0 {
		sigText = bytes.Index(data[sig:hdr], []byte("iI"))
	}
	if sigText < 0 {
		t.Fatalf("no base64 OpenPGP signature in the signature header")
	}
	for _, c := range []struct {
		name string
		at   int
		want string
	}{
		{"header", hdr + (payload-hdr)/2, "the header does not match its digest"},
		{"payload", payload + (len(data)-payload)/2, "the payload does not match its digest"},
		{"OpenPGP signature", sig + sigText + 40, "signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := bytes.Clone(data)
			bad[c.at] ^= 0x01
			p := filepath.Join(t.TempDir(), "bad.rpm")
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := inspect.File(p, inspect.Options{Keyring: keys})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("inspect of the package with a flipped %s byte: %v, want %q", c.name, err, c.want)
			}
			if err != nil {
				t.Logf("inspect: %v", err)
			}
			if out, rerr := r.RPM("-K", p); rerr == nil {
				t.Errorf("rpm 6.1's rpm -K accepts the package with a flipped %s byte, which inspect refuses: %s", c.name, out)
			}
		})
	}
	if out, err := r.RPM("-K", b.v6Signed); err != nil {
		t.Errorf("rpm -K of the intact signed package: %v\n%s", err, out)
	}
}

// otherKey makes a key that did not sign anything, exported armored.
func otherKey(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	gpg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	gpg("--quick-gen-key", "Someone Else <else@example.com>", "default", "default", "never")
	p := filepath.Join(home, "else.asc")
	gpg("--armor", "--output", p, "--export")
	exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
	return p
}

// TestV6Fixture reads the v6 packages kept in testdata/v6 (rpm 6.1's, see
// its README) on the host, without the sid root: the same checks as
// TestV6 on fixed input.
func TestV6Fixture(t *testing.T) {
	dir := filepath.Join("testdata", "v6")
	keys, err := inspect.ReadKeyring(filepath.Join(dir, "pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	v6 := reportOf(t, filepath.Join(dir, "v6.rpm"), inspect.Options{})
	v4 := reportOf(t, filepath.Join(dir, "v4.rpm"), inspect.Options{})
	signed := reportOf(t, filepath.Join(dir, "v6-signed.rpm"), inspect.Options{Keyring: keys})
	if v6.Format != 6 || v4.Format != 4 || signed.Format != 6 {
		t.Errorf("formats %d, %d, %d; want 6, 4, 6", v6.Format, v4.Format, signed.Format)
	}
	if !reflect.DeepEqual(comparable(v6), comparable(v4)) || !reflect.DeepEqual(comparable(v6), comparable(signed)) {
		t.Errorf("the three packages read differently:\nv6 %+v\nv4 %+v\nsigned %+v", comparable(v6), comparable(v4), comparable(signed))
	}
	if len(signed.Signatures) != 1 || !signed.Signatures[0].Verified || signed.Signatures[0].Signer != "V6 Signer <v6@example.com>" {
		t.Errorf("signatures %+v", signed.Signatures)
	}
	var text bytes.Buffer
	v6.WriteText(&text)
	for _, want := range []string{"rpm format v6, zstd payload", "digests:     header SHA256, SHA3-256 OK, payload SHA256, SHA512, SHA3-256 OK, 2 file digests OK", "qemu-s390x M F /usr/bin/qemu-s390x-static"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, text.String())
		}
	}
}
