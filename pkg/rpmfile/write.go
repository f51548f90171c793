package rpmfile

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/klauspost/compress/zstd"
)

// Compressor selects how the payload is compressed. The payload is always
// zstd: rpm has read it since 4.14, and klauspost's encoder is fast enough
// to use a long window.
type Compressor struct {
	// Level is the encoder's speed: zstd.SpeedFastest (about zstd -1),
	// SpeedDefault (-3), SpeedBetterCompression (-7) or
	// SpeedBestCompression (-11).
	Level zstd.EncoderLevel
	// Window is the largest back-reference in bytes, a power of two; 0
	// keeps the encoder's default (8 MiB at most). The installing rpm
	// needs this much memory to decompress, and refuses more than 128 MiB
	// (libzstd's default limit).
	Window int
	// Segments cuts the payload into this many zstd frames, compressed
	// in parallel. Each frame starts without the window of the one
	// before, so more segments cost size; and the bytes depend on the
	// number, so it is part of the setting, never the number of CPUs.
	Segments int
	// Workers is how many segments are compressed at once; memory is
	// Workers times the window (twice, for the encoder's history).
	Workers int
	// PayloadFlags is recorded in the PAYLOADFLAGS tag, rpm's name for the
	// compression level. rpm does not read it back.
	PayloadFlags string
}

// MaxWindow is the largest window a stock rpm can decompress: libzstd
// refuses frames with a window above 2^27 unless told otherwise, and rpm
// 4.18 does not tell it.
const MaxWindow = 1 << 27

// Options control Write.
type Options struct {
	Compressor Compressor
	// TempDir holds the compressed payload until the header that goes
	// before it is known; "" is os.TempDir().
	TempDir string
	// Requires are requirements besides info.Depends, with their
	// context: Requires(post): X is {Name: X, Flags: SenseScriptPost}.
	Requires []Dependency
	// Conflicts are conflicts besides info.Conflicts, with their flags:
	// rpmbuild marks the ones a dependency generator found with
	// SenseFindRequires.
	Conflicts []Dependency
	// Triggers are the package's file triggers.
	Triggers []FileTrigger
	// SourceRPM is the source package this one is built from, for
	// subpackages of one source: "" is NAME-VERSION-RELEASE.src.rpm.
	SourceRPM string
	// Progress, if set, is called as the files' bytes go into the
	// compressor: done of total bytes so far. With several Workers it is
	// called from several goroutines at once.
	Progress func(done, total int64)
}

// rpmArch is nfpm's mapping of Go architecture names to rpm's, for
// packages whose definition uses GOARCH names.
var rpmArch = map[string]string{
	"all":      "noarch",
	"amd64":    "x86_64",
	"386":      "i386",
	"arm64":    "aarch64",
	"arm5":     "armv5tel",
	"arm6":     "armv6hl",
	"arm7":     "armv7hl",
	"mips64le": "mips64el",
	"mipsle":   "mipsel",
	"mips":     "mips",
	"loong64":  "loongarch64",
}

// Arch returns the rpm architecture nfpm would give info.
func Arch(info *nfpm.Info) string {
	if info.RPM.Arch != "" {
		return info.RPM.Arch
	}
	if a, ok := rpmArch[info.Arch]; ok {
		return a
	}
	return info.Arch
}

// FullVersion returns VERSION-RELEASE as nfpm writes them: the prerelease
// after "~", the version metadata after "+", release "1" by default.
func FullVersion(info *nfpm.Info) string {
	return version(info) + "-" + release(info)
}

func version(info *nfpm.Info) string {
	v := info.Version
	if info.Prerelease != "" {
		v += "~" + strings.ReplaceAll(info.Prerelease, "-", "_")
	}
	if info.VersionMetadata != "" {
		v += "+" + info.VersionMetadata
	}
	return v
}

func release(info *nfpm.Info) string {
	if info.Release == "" {
		return "1"
	}
	return info.Release
}

// FileName is the conventional file name, NAME-VERSION-RELEASE.ARCH.rpm,
// the same as nfpm's.
func FileName(info *nfpm.Info) string {
	return fmt.Sprintf("%s-%s.%s.rpm", info.Name, FullVersion(info), Arch(info))
}

// file is one header file entry.
type file struct {
	name         string
	src          string
	mode         uint32
	owner, group string
	mtime        uint32
	flags        uint32
	size         uint32
	digest       string
	linkTo       string
	kind         byte   // 'f' regular, 'd' directory, 'l' symlink, 'g' ghost
	ino          uint32 // FILEINODES, and the cpio entry's inode
}

// rpmfileAttrs (rpm's include/rpm/rpmfiles.h), as nfpm maps its content
// types onto them.
const (
	fileConfig    = 1 << 0
	fileDoc       = 1 << 1
	fileMissingOK = 1 << 3
	fileNoReplace = 1 << 4
	fileGhost     = 1 << 6
	fileLicense   = 1 << 7
	fileReadme    = 1 << 8
)

// Write writes the rpm package that nfpm's rpm packager would make of
// info to w, streaming the payload through a temporary file. info is
// prepared for the rpm packager in place, as nfpm does.
//
// It supports what nfpm's rpm packager supports except signing
// functions; a key file in info.RPM.Signature is used.
func Write(w io.Writer, info *nfpm.Info, opts Options) (err error) {
	if info.RPM.Signature.SignFn != nil {
		return errors.New("writing rpm: signing functions are not supported by the streaming writer; use a key file")
	}
	info.Arch = Arch(info)
	if err := nfpm.PrepareForPackager(info, "rpm"); err != nil {
		return fmt.Errorf("preparing package %s: %w", info.Name, err)
	}
	c := opts.Compressor
	if c.Window > MaxWindow {
		return fmt.Errorf("writing rpm: a %d byte window is more than rpm can decompress (%d)", c.Window, MaxWindow)
	}

	fileList, err := collectFiles(info)
	if err != nil {
		return err
	}
	for _, tr := range opts.Triggers {
		if err := tr.Check(); err != nil {
			return fmt.Errorf("writing rpm %s: %w", info.Name, err)
		}
	}
	// Unlock the key first: a wrong passphrase should not cost a
	// compressed payload.
	var s *signer
	if key := info.RPM.Signature.KeyFile; key != "" {
		if s, err = newSigner(key, info.RPM.Signature.KeyPassphrase, info.MTime); err != nil {
			return err
		}
	}

	tmp, err := os.CreateTemp(opts.TempDir, ".payload-*.zst")
	if err != nil {
		return fmt.Errorf("creating the payload file: %w", err)
	}
	defer func() {
		tmp.Close()
		if rerr := os.Remove(tmp.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("removing the payload file: %w", rerr)
		}
	}()
	payload, err := writePayload(tmp, fileList, c, opts.TempDir, opts.Progress)
	if err != nil {
		return err
	}

	hb, err := mainHeader(info, fileList, payload, c, opts)
	if err != nil {
		return err
	}

	sig := newHeader(regionSignatures)
	total := uint64(len(hb)) + uint64(payload.size)
	if total > math.MaxUint32 || payload.archiveSize > math.MaxUint32 {
		return fmt.Errorf("writing rpm: %d bytes of header and payload need rpm's 64-bit size tags, which this writer does not write", total)
	}
	sig.addInt32(sigSize, uint32(total))
	sum := sha256.Sum256(hb)
	sig.addString(sigSHA256, hex.EncodeToString(sum[:]))
	sig.addInt32(sigPayloadSize, uint32(payload.archiveSize))
	if s != nil {
		headerSig, err := s.sign(bytes.NewReader(hb))
		if err != nil {
			return fmt.Errorf("signing the header: %w", err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rereading the payload file: %w", err)
		}
		bodySig, err := s.sign(io.MultiReader(bytes.NewReader(hb), tmp))
		if err != nil {
			return fmt.Errorf("signing header and payload: %w", err)
		}
		sig.addBinary(sigRSA, headerSig)
		sig.addBinary(sigPGP, bodySig)
	}
	sb, err := sig.bytes()
	if err != nil {
		return err
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(lead(info.Name + "-" + FullVersion(info)))
	bw.Write(sb)
	// The signature header is padded to 8 bytes; the main header is not.
	bw.Write(make([]byte, (8-len(sb)%8)%8))
	bw.Write(hb)
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rereading the payload file: %w", err)
	}
	if _, err := io.Copy(bw, tmp); err != nil {
		return fmt.Errorf("writing the payload: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing rpm: %w", err)
	}
	return nil
}

// collectFiles turns nfpm's prepared contents into header entries, sorted
// by name as rpm wants them. Implicit directories are left out, as nfpm
// leaves them out: rpm creates them and nobody owns them.
func collectFiles(info *nfpm.Info) ([]*file, error) {
	var out []*file
	for _, c := range info.Contents {
		if c.Packager != "" && c.Packager != "rpm" {
			continue
		}
		name := path.Clean("/" + files.ToNixPath(c.Destination))
		if name == "/" {
			continue // rpm does not allow the root directory
		}
		f := &file{
			name:  name,
			src:   c.Source,
			owner: c.FileInfo.Owner,
			group: c.FileInfo.Group,
			mtime: uint32(c.FileInfo.MTime.Unix()),
			kind:  'f',
			mode:  unixPerm(c.FileInfo.Mode),
		}
		switch c.Type {
		case files.TypeImplicitDir:
			continue
		case files.TypeDir:
			f.kind = 'd'
			if !info.MTime.IsZero() {
				f.mtime = uint32(info.MTime.Unix())
			}
		case files.TypeSymlink:
			f.kind = 'l'
			f.linkTo = c.Source
			// rpmbuild records links as 0777, as lstat shows them;
			// rpmpack leaves the permission bits 0.
			f.mode = 0o777
		case files.TypeConfig:
			f.flags = fileConfig
		case files.TypeConfigNoReplace:
			f.flags = fileConfig | fileNoReplace
		case files.TypeConfigMissingOK:
			f.flags = fileConfig | fileMissingOK
		case files.TypeRPMGhost:
			f.kind = 'g'
			f.flags = fileGhost
			if f.mode&0o7777 == 0 {
				f.mode = 0o644
			}
		case files.TypeRPMDoc:
			f.flags = fileDoc
		case files.TypeRPMLicence, files.TypeRPMLicense:
			f.flags = fileLicense
		case files.TypeRPMReadme:
			f.flags = fileReadme
		case files.TypeFile, "":
		default:
			return nil, fmt.Errorf("writing rpm: content %q has type %q, which rpm packages cannot hold", c.Destination, c.Type)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for i := range out {
		out[i].ino = uint32(i + 1)
		if i > 0 && out[i].name == out[i-1].name {
			return nil, fmt.Errorf("writing rpm: %q is in the package twice", out[i].name)
		}
	}
	return out, nil
}

// payloadInfo is what the header needs to know about the written payload.
type payloadInfo struct {
	size        int64  // compressed, as written to the file
	archiveSize int64  // the uncompressed cpio archive
	digest      string // hex SHA-256 of the compressed payload
	filesSize   int64  // sum of file and link target sizes, rpm's SIZE
}

// countWriter counts and hashes what goes through it.
type countWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// writePayload writes the compressed cpio archive of fileList to out and
// fills in each file's size and digest on the way.
//
// With c.Segments above 1 the archive is cut, between entries, into that
// many runs of about equal size, each compressed into a zstd frame of its
// own by its own goroutine; the frames are then concatenated, which is
// still one valid zstd stream. Every entry starts on a 4-byte boundary of
// the archive, so each run pads the same way on its own as in the whole.
func writePayload(out io.Writer, fileList []*file, c Compressor, tempDir string, progress func(done, total int64)) (payloadInfo, error) {
	var info payloadInfo
	if err := statFiles(fileList); err != nil {
		return info, err
	}
	m := &meter{fn: progress}
	for _, f := range fileList {
		if f.kind == 'f' {
			m.total += int64(f.size)
		}
	}
	runs := split(fileList, max(c.Segments, 1))
	counted := &countWriter{w: out, h: sha256.New()}
	if len(runs) == 1 {
		n, err := compressRun(counted, runs[0], true, c, m)
		if err != nil {
			return info, err
		}
		info.archiveSize = n
	} else {
		parts, sizes, err := compressRuns(runs, c, tempDir, m)
		defer func() {
			for _, p := range parts {
				p.Close()
				os.Remove(p.Name())
			}
		}()
		if err != nil {
			return info, err
		}
		for i, p := range parts {
			if _, err := p.Seek(0, io.SeekStart); err != nil {
				return info, fmt.Errorf("rereading a payload part: %w", err)
			}
			if _, err := io.Copy(counted, p); err != nil {
				return info, fmt.Errorf("joining the payload parts: %w", err)
			}
			info.archiveSize += sizes[i]
		}
	}
	info.size = counted.n
	info.digest = hex.EncodeToString(counted.h.Sum(nil))
	for _, f := range fileList {
		if f.kind == 'f' || f.kind == 'l' {
			info.filesSize += int64(f.size)
		}
	}
	return info, nil
}

// minLastFrame is the smallest compressed size of the last frame of a
// payload cut into several. DataDog/zstd's streaming reader, which
// go-rpmutils uses when built with cgo, fails with "unexpected EOF" when a
// frame ends while the rest of the stream is already in its input buffer
// (at most one 128 KiB zstd block); rpm and klauspost's reader do not.
// A last frame larger than that buffer never lets it happen.
const minLastFrame = 1 << 20

// compressRuns compresses each run into a temporary file, at most
// c.Workers at a time, so that memory stays at Workers encoder windows.
// A last frame under minLastFrame is merged into the one before it and
// compressed again; that depends only on the files, so the bytes stay
// reproducible.
func compressRuns(runs [][]*file, c Compressor, tempDir string, m *meter) ([]*os.File, []int64, error) {
	parts := make([]*os.File, len(runs))
	sizes := make([]int64, len(runs))
	errs := make([]error, len(runs))
	for i := range runs {
		p, err := os.CreateTemp(tempDir, ".payload-part-*.zst")
		if err != nil {
			return parts[:i], nil, fmt.Errorf("creating a payload part: %w", err)
		}
		parts[i] = p
	}
	sem := make(chan struct{}, max(c.Workers, 1))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sizes[i], errs[i] = compressRun(parts[i], run, i == len(runs)-1, c, m)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return parts, nil, err
	}
	for len(parts) > 1 {
		last := parts[len(parts)-1]
		st, err := last.Stat()
		if err != nil {
			return parts, nil, fmt.Errorf("measuring a payload part: %w", err)
		}
		if st.Size() >= minLastFrame {
			break
		}
		n := len(parts)
		merged := append(runs[n-2][:len(runs[n-2]):len(runs[n-2])], runs[n-1]...)
		prev := parts[n-2]
		if _, err := prev.Seek(0, io.SeekStart); err != nil {
			return parts, nil, err
		}
		if err := prev.Truncate(0); err != nil {
			return parts, nil, err
		}
		size, err := compressRun(prev, merged, true, c, m)
		if err != nil {
			return parts, nil, err
		}
		last.Close()
		os.Remove(last.Name())
		parts, sizes, runs = parts[:n-1], sizes[:n-1], append(runs[:n-2], merged)
		sizes[n-2] = size
	}
	return parts, sizes, nil
}

// statFiles records the size of every regular file, for split; copyFile
// checks it again against the open file.
func statFiles(fileList []*file) error {
	for _, f := range fileList {
		if f.kind != 'f' {
			continue
		}
		st, err := os.Stat(f.src)
		if err != nil {
			return fmt.Errorf("adding %s to the package: %w", f.name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("adding %s to the package: %q is not a regular file", f.name, f.src)
		}
		if st.Size() > math.MaxUint32 {
			return fmt.Errorf("adding %s to the package: %q is larger than 4 GiB", f.name, f.src)
		}
		f.size = uint32(st.Size())
	}
	return nil
}

// split cuts fileList into at most n contiguous runs of about equal total
// size. It depends only on the files, so the same files always give the
// same runs and the same bytes.
func split(fileList []*file, n int) [][]*file {
	var total int64
	for _, f := range fileList {
		total += int64(f.size)
	}
	if n <= 1 || total == 0 {
		return [][]*file{fileList}
	}
	var runs [][]*file
	start, acc := 0, int64(0)
	for i, f := range fileList {
		acc += int64(f.size)
		// Close the run once it holds its share of the bytes.
		if len(runs) < n-1 && acc*int64(n) >= total*int64(len(runs)+1) {
			runs = append(runs, fileList[start:i+1])
			start = i + 1
		}
	}
	if start < len(fileList) {
		runs = append(runs, fileList[start:])
	}
	return runs
}

// compressRun writes the cpio entries of run, and the trailer if last,
// through one zstd encoder to out. It returns the size of the archive
// bytes it wrote.
func compressRun(out io.Writer, run []*file, last bool, c Compressor, m *meter) (int64, error) {
	bw := bufio.NewWriterSize(out, 1<<20)
	zopts := []zstd.EOption{
		zstd.WithEncoderLevel(c.Level),
		// Above 1 the encoder compresses one block while the next is
		// read; measured here that only adds overhead.
		zstd.WithEncoderConcurrency(1),
		// rpm checks the payload digest; a frame checksum would only
		// cost time.
		zstd.WithEncoderCRC(false),
	}
	if c.Window > 0 {
		zopts = append(zopts, zstd.WithWindowSize(c.Window))
	}
	enc, err := zstd.NewWriter(bw, zopts...)
	if err != nil {
		return 0, fmt.Errorf("setting up the zstd encoder: %w", err)
	}
	cw := &cpioWriter{w: enc}
	buf := make([]byte, 1<<20)
	for _, f := range run {
		if err := writeEntry(cw, f, buf, m); err != nil {
			return 0, err
		}
	}
	if last {
		if err := cw.close(); err != nil {
			return 0, fmt.Errorf("writing the payload: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return 0, fmt.Errorf("compressing the payload: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("writing the payload: %w", err)
	}
	return cw.n, nil
}

// writeEntry writes f's cpio entry and fills in its mode, size and digest.
func writeEntry(cw *cpioWriter, f *file, buf []byte, m *meter) error {
	switch f.kind {
	case 'd':
		f.mode |= 0o040000
		f.size = 4096
		if err := cw.header("."+f.name, f.ino, f.mode, 2, f.mtime, 0); err != nil {
			return err
		}
	case 'l':
		f.mode |= 0o120000
		f.size = uint32(len(f.linkTo))
		if err := cw.header("."+f.name, f.ino, f.mode, 1, f.mtime, int64(len(f.linkTo))); err != nil {
			return err
		}
		if err := cw.write([]byte(f.linkTo)); err != nil {
			return err
		}
	case 'g':
		// A ghost has no payload; its digest is that of the source if
		// there is one, as nfpm computes it.
		f.mode |= 0o100000
		data, _ := os.ReadFile(f.src)
		sum := sha256.Sum256(data)
		f.size = uint32(len(data))
		f.digest = hex.EncodeToString(sum[:])
		return nil
	default:
		f.mode |= 0o100000
		digest, err := copyFile(cw, f, buf, m)
		if err != nil {
			return err
		}
		f.digest = digest
	}
	if err := cw.pad(); err != nil {
		return fmt.Errorf("writing the payload: %w", err)
	}
	return nil
}

// copyFile writes one regular file's cpio entry and returns its hex
// SHA-256. The copy must match the size statFiles saw: a file that changes
// while the package is built fails the build rather than giving a payload
// that disagrees with its header.
func copyFile(cw *cpioWriter, f *file, buf []byte, m *meter) (string, error) {
	src, err := os.Open(f.src)
	if err != nil {
		return "", fmt.Errorf("adding %s to the package: %w", f.name, err)
	}
	defer src.Close()
	size := int64(f.size)
	if err := cw.header("."+f.name, f.ino, f.mode, 1, f.mtime, size); err != nil {
		return "", fmt.Errorf("adding %s to the package: %w", f.name, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(writerFunc(cw.write), h, writerFunc(m.add)), io.LimitReader(src, size), buf)
	if err != nil {
		return "", fmt.Errorf("adding %s to the package: %w", f.name, err)
	}
	if n != size {
		return "", fmt.Errorf("adding %s to the package: %q shrank from %d to %d bytes while it was read", f.name, f.src, size, n)
	}
	if m, _ := src.Read(buf[:1]); m > 0 {
		return "", fmt.Errorf("adding %s to the package: %q grew while it was read", f.name, f.src)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unixPerm converts Go's permission and special bits to the unix ones rpm
// keeps in FILEMODES.
func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// meter counts the files' bytes read into the payload, for
// Options.Progress.
type meter struct {
	fn    func(done, total int64)
	total int64
	done  atomic.Int64
}

func (m *meter) add(p []byte) error {
	if m.fn != nil {
		// A last frame too small to stand alone is compressed again
		// (compressRuns), which counts its bytes twice.
		m.fn(min(m.done.Add(int64(len(p))), m.total), m.total)
	}
	return nil
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// mainHeader encodes the package header with the tags rpmpack writes,
// and the dependencies and triggers rpmbuild writes.
func mainHeader(info *nfpm.Info, fileList []*file, p payloadInfo, c Compressor, opts Options) ([]byte, error) {
	h := newHeader(regionImmutable)
	h.addStrings(tagI18NTable, []string{"C"})
	h.addString(tagName, info.Name)
	h.addString(tagVersion, version(info))
	h.addString(tagRelease, release(info))
	if info.Epoch != "" {
		var epoch uint32
		if _, err := fmt.Sscanf(info.Epoch, "%d", &epoch); err != nil || fmt.Sprint(epoch) != info.Epoch {
			return nil, fmt.Errorf("writing rpm: epoch %q is not a number", info.Epoch)
		}
		h.addInt32(tagEpoch, epoch)
	}
	summary := info.RPM.Summary
	if summary == "" {
		summary = strings.Split(info.Description, "\n")[0]
	}
	h.addString(tagSummary, summary)
	h.addString(tagDescription, info.Description)
	if info.RPM.BuildHost == "" {
		return nil, errors.New("writing rpm: no build host; set rpm.buildhost so that builds are reproducible")
	}
	h.addString(tagBuildHost, info.RPM.BuildHost)
	if !info.MTime.IsZero() {
		h.addInt32(tagBuildTime, uint32(info.MTime.Unix()))
	}
	if p.filesSize > math.MaxUint32 {
		return nil, fmt.Errorf("writing rpm: %d bytes of files need rpm's 64-bit size tags, which this writer does not write", p.filesSize)
	}
	h.addInt32(tagSize, uint32(p.filesSize))
	if len(info.RPM.Prefixes) > 0 {
		h.addStrings(tagPrefixes, info.RPM.Prefixes)
	}
	h.addString(tagPayloadFormat, "cpio")
	h.addString(tagPayloadCompressor, "zstd")
	flags := c.PayloadFlags
	if flags == "" {
		flags = "3"
	}
	h.addString(tagPayloadFlags, flags)
	h.addString(tagArch, info.Arch)
	platform := info.Platform
	if platform == "" {
		platform = "linux"
	}
	h.addString(tagOS, platform)
	if info.Vendor != "" {
		h.addString(tagVendor, info.Vendor)
	}
	h.addString(tagLicense, info.License)
	packager := info.RPM.Packager
	if packager == "" {
		packager = info.Maintainer
	}
	if packager != "" {
		h.addString(tagPackager, packager)
	}
	if info.RPM.Group != "" {
		h.addString(tagGroup, info.RPM.Group)
	}
	if info.Homepage != "" {
		h.addString(tagURL, info.Homepage)
	}
	h.addStrings(tagPayloadDigest, []string{p.digest})
	h.addInt32(tagPayloadDigestAlgo, hashAlgoSHA256)
	// rpm tells binary from source packages by this tag.
	srpm := opts.SourceRPM
	if srpm == "" {
		srpm = info.Name + "-" + FullVersion(info) + ".src.rpm"
	}
	h.addString(tagSourceRPM, srpm)

	scripts := []struct {
		src           string
		tag, progTags uint32
		context       Sense
	}{
		{info.RPM.Scripts.PreTrans, tagPretrans, tagPretransProg, SensePreTrans},
		{info.Scripts.PreInstall, tagPrein, tagPreinProg, SenseScriptPre},
		{info.Scripts.PostInstall, tagPostin, tagPostinProg, SenseScriptPost},
		{info.Scripts.PreRemove, tagPreun, tagPreunProg, SenseScriptPreun},
		{info.Scripts.PostRemove, tagPostun, tagPostunProg, SenseScriptPostun},
		{info.RPM.Scripts.PostTrans, tagPosttrans, tagPosttransProg, SensePostTrans},
		{info.RPM.Scripts.Verify, tagVerifyScript, tagVerifyScriptProg, SenseScriptVerify},
	}
	var requires []Dependency
	for _, s := range scripts {
		if s.src == "" {
			continue
		}
		body, err := os.ReadFile(s.src)
		if err != nil {
			return nil, fmt.Errorf("reading scriptlet: %w", err)
		}
		h.addString(s.tag, string(body))
		h.addString(s.progTags, "/bin/sh")
		// rpmbuild makes each scriptlet require its interpreter in
		// the scriptlet's context, so that rpm orders the package
		// after the one that provides it.
		requires = append(requires, Dependency{Name: "/bin/sh", Flags: SenseInterp | s.context})
	}
	for _, tr := range opts.Triggers {
		if tr.prog() == LuaProg {
			requires = append(requires, rpmlib("BuiltinLuaScripts"))
		} else {
			requires = append(requires, Dependency{Name: tr.prog(), Flags: SenseInterp})
		}
	}
	h.addTriggers(opts.Triggers)

	if len(fileList) > 0 {
		addFiles(h, fileList)
	}
	if err := addChangelog(h, info); err != nil {
		return nil, err
	}

	parse := func(items []string) ([]Dependency, error) {
		var out []Dependency
		for _, s := range items {
			r, err := parseRelation(s)
			if err != nil {
				return nil, err
			}
			out = append(out, Dependency{Name: r.name, Version: r.version, Flags: Sense(r.flags)})
		}
		return out, nil
	}
	lists := map[uint32][]Dependency{}
	for _, l := range []struct {
		items   []string
		nameTag uint32
	}{
		{info.Provides, tagProvideName},
		{info.Replaces, tagObsoleteName},
		{info.Suggests, tagSuggestName},
		{info.Recommends, tagRecommendName},
		{info.Depends, tagRequireName},
		{info.Conflicts, tagConflictName},
	} {
		ds, err := parse(l.items)
		if err != nil {
			return nil, err
		}
		lists[l.nameTag] = ds
	}
	full := FullVersion(info)
	provides := append(lists[tagProvideName], Dependency{Name: info.Name, Version: full, Flags: SenseEqual})
	if isa, ok := isaNames[info.Arch]; ok {
		provides = append(provides, Dependency{Name: info.Name + "(" + isa + ")", Version: full, Flags: SenseEqual})
	}
	for _, f := range fileList {
		if f.kind != 'f' || !isMacroFile(f.name) {
			continue
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("reading macros file %s: %w", f.name, err)
		}
		for _, m := range MacroNames(data) {
			provides = append(provides, Dependency{Name: "rpm_macro(" + m + ")", Flags: SenseFindProvides})
		}
	}
	lists[tagProvideName] = provides

	requires = append(append(requires, lists[tagRequireName]...), opts.Requires...)
	// The rpmlib() features the package uses, as rpmbuild adds them, so
	// that an rpm without one refuses the package at dependency time
	// rather than failing half way through the payload.
	if len(fileList) > 0 {
		requires = append(requires, rpmlib("CompressedFileNames"), rpmlib("FileDigests"))
	}
	requires = append(requires, rpmlib("PayloadFilesHavePrefix"), rpmlib("PayloadIsZstd"))
	lists[tagConflictName] = append(lists[tagConflictName], opts.Conflicts...)
	var all []Dependency
	for _, ds := range lists {
		all = append(all, ds...)
	}
	all = append(all, requires...)
	versions := []string{full}
	rich := false
	for _, d := range all {
		versions = append(versions, d.Version)
		rich = rich || strings.HasPrefix(d.Name, "(")
	}
	if rich {
		requires = append(requires, rpmlib("RichDependencies"))
	}
	requires = append(requires, versionFeatures(versions...)...)
	lists[tagRequireName] = requires

	for _, l := range []struct{ nameTag, verTag, flagsTag uint32 }{
		{tagProvideName, tagProvideVersion, tagProvideFlags},
		{tagObsoleteName, tagObsoleteVersion, tagObsoleteFlags},
		{tagSuggestName, tagSuggestVersion, tagSuggestFlags},
		{tagRecommendName, tagRecommendVersion, tagRecommendFlags},
		{tagRequireName, tagRequireVersion, tagRequireFlags},
		{tagConflictName, tagConflictVersion, tagConflictFlags},
	} {
		h.addDeps(l.nameTag, l.verTag, l.flagsTag, sortDeps(lists[l.nameTag]))
	}
	return h.bytes()
}

// addChangelog adds the entries of info's chglog file the way nfpm
// renders them: one "- note" line per change, continuation lines kept,
// and "PACKAGER - VERSION" as each entry's name.
func addChangelog(h *header, info *nfpm.Info) error {
	if info.Changelog == "" {
		return nil
	}
	log, err := info.GetChangeLog()
	if err != nil {
		return fmt.Errorf("reading changelog: %w", err)
	}
	if len(log.Entries) == 0 {
		// Empty tags would make an invalid package.
		return nil
	}
	var times []uint32
	var names, texts []string
	for _, e := range log.Entries {
		var b strings.Builder
		for _, c := range e.Changes {
			lines := strings.Split(c.Note, "\n")
			b.WriteString("\n- " + lines[0])
			for _, l := range lines[1:] {
				if strings.TrimSpace(l) != "" {
					b.WriteString("\n" + l)
				}
			}
		}
		times = append(times, uint32(e.Date.Unix()))
		names = append(names, fmt.Sprintf("%s - %s", e.Packager, e.Semver))
		texts = append(texts, strings.TrimSpace(b.String()))
	}
	h.addInt32(tagChangelogTime, times...)
	h.addStrings(tagChangelogName, names)
	h.addStrings(tagChangelogText, texts)
	return nil
}

// addFiles adds the file tags: compressed file names (a directory list and
// an index into it per file) and the per-file arrays.
func addFiles(h *header, fileList []*file) {
	n := len(fileList)
	var (
		dirNames  []string
		dirIndex  = map[string]uint32{}
		dirIdx    = make([]uint32, n)
		baseNames = make([]string, n)
		sizes     = make([]uint32, n)
		modes     = make([]uint16, n)
		rdevs     = make([]uint16, n)
		mtimes    = make([]uint32, n)
		digests   = make([]string, n)
		linkTos   = make([]string, n)
		flags     = make([]uint32, n)
		users     = make([]string, n)
		groups    = make([]string, n)
		verify    = make([]uint32, n)
		devices   = make([]uint32, n)
		inodes    = make([]uint32, n)
		langs     = make([]string, n)
	)
	for i, f := range fileList {
		dir, base := path.Split(f.name)
		idx, ok := dirIndex[dir]
		if !ok {
			idx = uint32(len(dirNames))
			dirIndex[dir] = idx
			dirNames = append(dirNames, dir)
		}
		dirIdx[i] = idx
		baseNames[i] = base
		sizes[i] = f.size
		modes[i] = uint16(f.mode)
		mtimes[i] = f.mtime
		digests[i] = f.digest
		linkTos[i] = f.linkTo
		flags[i] = f.flags
		users[i] = f.owner
		groups[i] = f.group
		verify[i] = math.MaxUint32 // verify everything, as rpmpack does
		devices[i] = 1
		inodes[i] = f.ino
	}
	h.addStrings(tagBaseNames, baseNames)
	h.addInt32(tagDirIndexes, dirIdx...)
	h.addStrings(tagDirNames, dirNames)
	h.addInt32(tagFileSizes, sizes...)
	h.addInt16(tagFileModes, modes...)
	h.addInt16(tagFileRDevs, rdevs...)
	h.addInt32(tagFileMTimes, mtimes...)
	h.addStrings(tagFileDigests, digests)
	h.addStrings(tagFileLinkTos, linkTos)
	h.addInt32(tagFileFlags, flags...)
	h.addStrings(tagFileUserName, users)
	h.addStrings(tagFileGroupName, groups)
	h.addInt32(tagFileVerifyFlags, verify...)
	h.addInt32(tagFileDevices, devices...)
	h.addInt32(tagFileINodes, inodes...)
	h.addStrings(tagFileLangs, langs)
	h.addInt32(tagFileDigestAlgo, hashAlgoSHA256)
}
