package inspect

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/ulikunitz/xz/lzma"
	"github.com/xi2/xz"
)

// What a package may make inspect hold or do. A package is a few MiB
// that can declare anything: sizes of 4 GiB, a 2 GiB dictionary. These
// bounds keep inspect's peak memory under 64 MiB for any input under
// 10 MiB, and its time bounded by maxPayload (docs/reliability.md has
// the figures). Variables, so that tests can lower them.
var (
	// maxPayload bounds the decompressed payload: rpm's newc cpio
	// cannot hold a file of 4 GiB, and a package of more than this is
	// refused rather than read for minutes.
	maxPayload int64 = 4 << 30
	// maxDict bounds the dictionary of an xz or lzma payload and the
	// window of a zstd one, which the decoder allocates whole. rpm's
	// presets stay below it: xz -8 uses 32 MiB, zstd -19 8 MiB; xz -9
	// (64 MiB) is refused.
	maxDict = 32 << 20
	// maxConfTotal bounds the binfmt.d data kept from one package, all
	// files together; each file is bounded by binfmt.MaxConfigSize.
	maxConfTotal = 2 << 20
	// maxBinfmtEntries bounds the binfmt entries linted; maxLineErrors the
	// problems reported for the lines of one file.
	maxBinfmtEntries = 4096
	maxLineErrors    = 20
)

// limitReader fails a read past limit bytes.
type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("%w: the payload decompresses to more than %d bytes: more than its header's files and rpm's cpio format account for, or over the limit", ErrMalformed, l.limit)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// decompress wraps the compressed payload in the decoder the header
// names, with the dictionary or window bounded by maxDict. It replaces
// go-rpmutils' PayloadReaderExtended, whose lzma and xz readers accept
// any dictionary (2 GiB, allocated at once). The closer releases the
// decoder's goroutines (zstd).
func decompress(r io.Reader, compressor string, hasTag bool) (io.Reader, func(), error) {
	nop := func() {}
	br := bufio.NewReader(r)
	if !hasTag {
		// rpm's default without the tag: gzip if it looks like gzip.
		if b, _ := br.Peek(2); len(b) == 2 && b[0] == 0x1f && b[1] == 0x8b {
			compressor = "gzip"
		} else {
			compressor = "uncompressed"
		}
	}
	switch compressor {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip payload: %v", ErrMalformed, err)
		}
		return zr, nop, nil
	case "bzip2":
		return bzip2.NewReader(br), nop, nil
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(maxDict)), zstd.WithDecoderMaxMemory(uint64(maxDict)))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd payload: %w", err)
		}
		return &zstdErrors{zr}, zr.Close, nil
	case "xz":
		zr, err := xz.NewReader(br, uint32(maxDict))
		if errors.Is(err, xz.ErrMemlimit) {
			return nil, nil, fmt.Errorf("%w: the xz payload asks for a dictionary over %d bytes", ErrMalformed, maxDict)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: xz payload: %v", ErrMalformed, err)
		}
		return &xzErrors{zr}, nop, nil
	case "lzma":
		// The .lzma header: a properties byte, the dictionary size
		// (little endian) and the uncompressed size.
		b, err := br.Peek(13)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: the lzma payload is shorter than its header", ErrMalformed)
		}
		if d := binary.LittleEndian.Uint32(b[1:5]); d > uint32(maxDict) {
			return nil, nil, fmt.Errorf("%w: the lzma payload asks for a dictionary of %d bytes; at most %d are allowed", ErrMalformed, d, maxDict)
		}
		zr, err := lzma.ReaderConfig{DictCap: maxDict}.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: lzma payload: %v", ErrMalformed, err)
		}
		return zr, nop, nil
	case "uncompressed":
		return br, nop, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown payload compressor %q", ErrMalformed, compressor)
}

// xzErrors says what xz's ErrMemlimit means.
type xzErrors struct{ r io.Reader }

func (x *xzErrors) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if errors.Is(err, xz.ErrMemlimit) {
		err = fmt.Errorf("%w: the xz payload asks for a dictionary over %d bytes", ErrMalformed, maxDict)
	}
	return n, err
}

// zstdErrors says what the decoder's window error means.
type zstdErrors struct{ r io.Reader }

func (z *zstdErrors) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		err = fmt.Errorf("%w: the zstd payload asks for a window over %d bytes", ErrMalformed, maxDict)
	}
	return n, err
}

// linkKey identifies a hardlink set in the header: rpm groups files by
// device and inode.
type linkKey struct{ dev, ino int }

// payloadPlan is what the header says about the payload, worked out
// before the payload is read.
type payloadPlan struct {
	byPath map[string]int // index into files
	files  []rpmutils.FileInfo
	sets   map[linkKey][]int // hardlink sets of more than one regular file
	want   map[int]bool      // files whose data is kept
	confs  []confSource
	bound  int64 // the most the cpio archive can take
}

// confSource is a binfmt.d file of the package and where its data come
// from: itself, the file its symlink resolves to in the payload, or its
// hardlink set.
type confSource struct {
	path    string
	data    int    // index of the file whose data it has, or -1
	target  string // the path a symlink resolves to
	problem string // why its data are not the package's
	masked  bool
}

func planPayload(files []rpmutils.FileInfo) *payloadPlan {
	p := &payloadPlan{byPath: map[string]int{}, files: files, sets: map[linkKey][]int{}, want: map[int]bool{}}
	for i, f := range files {
		p.byPath[f.Name()] = i
		if isRegular(f) {
			k := linkKey{f.Device(), f.Inode()}
			p.sets[k] = append(p.sets[k], i)
		}
		// A newc header, the name (with "./" and its NUL), alignment,
		// the data and alignment.
		size := f.Size()
		if !isRegular(f) {
			size = int64(len(f.Linkname()))
		}
		p.bound += newcHeaderSize + int64(len(f.Name())) + 2 + 3 + size + 3
	}
	p.bound += newcHeaderSize + int64(len(cpioTrailer)) + 1 + 3
	for k, s := range p.sets {
		if len(s) < 2 || k.ino == 0 {
			delete(p.sets, k)
		}
	}
	for _, name := range p.confNames() {
		c := confSource{path: name, data: -1}
		i, shipped := p.byPath[name]
		if shipped && isRegular(files[i]) {
			c.data = i
		} else {
			c.target = p.resolve(name)
			what := "leads, through the package's symbolic links, to " + c.target
			if shipped {
				what = "is a symbolic link to " + c.target
			}
			j, ok := p.byPath[c.target]
			switch {
			case c.target == "/dev/null":
				c.masked = true
			case c.target == "":
				c.problem = fmt.Sprintf("is a symbolic link that does not resolve within %d links", maxLinks)
			case !ok:
				c.problem = what + ", outside the package: what it defines depends on the system it is installed on"
			case !isRegular(files[j]):
				c.problem = what + ", which is not a regular file in the package"
			default:
				c.data = j
			}
		}
		if c.data >= 0 {
			p.want[c.data] = true
			for _, j := range p.sets[linkKey{files[c.data].Device(), files[c.data].Inode()}] {
				p.want[j] = true
			}
		}
		p.confs = append(p.confs, c)
	}
	return p
}

const maxLinks = 40

// confNames lists the binfmt.d files the package puts on disk: its own
// *.conf files (and symlinks) in binfmt.d directories, and the *.conf
// files inside a directory that a symlink named binfmt.d of the package
// leads to: systemd-binfmt reads those through the link.
func (p *payloadPlan) confNames() []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, f := range p.files {
		if isConf(f.Name()) && (isRegular(f) || f.Mode()&0o170000 == 0o120000) {
			add(f.Name())
		}
	}
	for _, l := range p.files {
		if path.Base(l.Name()) != "binfmt.d" || l.Mode()&0o170000 != 0o120000 {
			continue
		}
		dir := p.resolve(l.Name())
		for _, f := range p.files {
			if dir != "" && path.Dir(f.Name()) == dir && strings.HasSuffix(f.Name(), ".conf") && !strings.HasPrefix(path.Base(f.Name()), ".") {
				add(l.Name() + "/" + path.Base(f.Name()))
			}
		}
	}
	sort.Strings(names)
	return names
}

func isRegular(f rpmutils.FileInfo) bool { return f.Mode()&0o170000 == 0o100000 }

// resolve follows the package's own symlinks in p, component by
// component as the kernel would once the package is installed, and
// returns the path reached, or "" after too many links. Directories the
// package does not ship are taken as they are named.
func (p *payloadPlan) resolve(name string) string {
	return resolveLinks(name, func(q string) (string, bool) {
		if i, ok := p.byPath[q]; ok && p.files[i].Mode()&0o170000 == 0o120000 {
			return p.files[i].Linkname(), true
		}
		return "", false
	})
}

// resolveLinks is resolve with the package's symlinks given by link.
func resolveLinks(name string, link func(string) (string, bool)) string {
	cur, rest, links := "/", strings.TrimPrefix(name, "/"), 0
	for rest != "" {
		comp, r, _ := strings.Cut(rest, "/")
		rest = r
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		if t, ok := link(next); ok {
			if links++; links > maxLinks {
				return ""
			}
			if strings.HasPrefix(t, "/") {
				cur = "/"
			}
			if rest != "" {
				t += "/" + rest
			}
			rest = t
			continue
		}
		cur = next
	}
	return cur
}

// readPayload reads every file of the payload as a stream, checking its
// digest against the header, and keeps the data of the binfmt.d files
// (and of the files their symlinks or hardlinks lead to).
func (r *Report) readPayload(pkg *rpmutils.Rpm, payload io.Reader) error {
	algo := crypto.MD5 // rpm's default when the header names none
	// One value; rpmpack writes one per file, all the same.
	if v, err := pkg.Header.GetInts(rpmutils.FILEDIGESTALGO); err == nil && len(v) > 0 {
		algo = fileHash(v[0])
	}
	files, err := pkg.Header.GetFiles()
	if err != nil {
		return fmt.Errorf("reading the file list: %w", err)
	}
	plan := planPayload(files)
	zr, closeZ, err := decompress(payload, r.Compressor, pkg.Header.HasTag(rpmutils.PAYLOADCOMPRESSOR))
	if err != nil {
		return fmt.Errorf("reading the payload: %w", err)
	}
	defer closeZ()
	limit := min(plan.bound, maxPayload)
	cr := newCpioReader(&limitReader{r: zr, left: limit, limit: limit}, func(i int) (int64, bool) {
		if i < 0 || i >= len(files) {
			return 0, false
		}
		if isRegular(files[i]) {
			// All but the last of a hardlink set come without data.
			if s := plan.sets[linkKey{files[i].Device(), files[i].Inode()}]; len(s) > 1 && s[len(s)-1] != i {
				return 0, true
			}
			return files[i].Size(), true
		}
		if files[i].Mode()&0o170000 == 0o120000 {
			return int64(len(files[i].Linkname())), true
		}
		return 0, true
	})
	seen := make([]bool, len(files))
	kept := map[int]string{}    // binfmt.d data, by file
	skipped := map[int]string{} // why a wanted file's data were not kept
	keptTotal := 0
	for {
		e, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the payload: %w", err)
		}
		i := e.Index
		if i < 0 {
			name := e.Name
			if strings.HasPrefix(name, "./") {
				name = name[1:]
			}
			var ok bool
			if i, ok = plan.byPath[name]; !ok {
				return fmt.Errorf("reading the payload: %w: %q is in the payload but not in the header", ErrMalformed, name)
			}
		}
		f := files[i]
		if seen[i] {
			return fmt.Errorf("reading the payload: %w: %s is in the payload twice", ErrMalformed, f.Name())
		}
		seen[i] = true
		if e.Index < 0 {
			if err := checkEntry(e, f, plan); err != nil {
				return fmt.Errorf("reading the payload: %w", err)
			}
		}
		if !isRegular(f) || e.Size == 0 && f.Size() != 0 {
			// Data of links and other files are skipped by Next; a
			// hardlink without data gets them from its set.
			continue
		}
		var w io.Writer = io.Discard
		var conf *strings.Builder
		if plan.want[i] {
			// The size is the header's, which the archive matched.
			switch size := f.Size(); {
			case size > binfmt.MaxConfigSize:
				skipped[i] = fmt.Sprintf("%s is %d bytes, over the limit of %d for a binfmt.d file; not read", f.Name(), size, binfmt.MaxConfigSize)
			case int64(keptTotal)+size > int64(maxConfTotal):
				skipped[i] = fmt.Sprintf("not read: the package's binfmt.d files hold more than %d bytes together", maxConfTotal)
			default:
				conf = &strings.Builder{}
				conf.Grow(int(size))
				w = conf
				keptTotal += int(size)
			}
		}
		if f.Digest() == "" || !algo.Available() {
			if _, err := io.Copy(w, cr); err != nil {
				return fmt.Errorf("reading %s from the payload: %w", f.Name(), err)
			}
			r.Digests.FilesNoHash++
		} else {
			h := algo.New()
			if _, err := io.Copy(io.MultiWriter(w, h), cr); err != nil {
				return fmt.Errorf("reading %s from the payload: %w", f.Name(), err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != f.Digest() {
				return fmt.Errorf("%w: %s in the payload has %s digest %s, the header says %s", ErrDigest, f.Name(), hashName(algo), got, f.Digest())
			}
			r.Digests.FilesOK++
		}
		if conf != nil {
			kept[i] = conf.String()
		}
	}
	// Every regular file with content must have come through the
	// payload, or the package is cut short (ghost files never do).
	for i, f := range files {
		if isRegular(f) && f.Flags()&(1<<6) == 0 && !seen[i] {
			return fmt.Errorf("reading the payload: %s is in the header but not in the payload", f.Name())
		}
	}
	for _, c := range plan.confs {
		conf := Conf{Path: c.path, Target: c.target, Masked: c.masked}
		if c.problem != "" {
			r.problem(SeverityError, c.path, c.problem)
		}
		if c.data >= 0 {
			// A hardlink may have its data with another file of its set.
			from := []int{c.data}
			from = append(from, plan.sets[linkKey{files[c.data].Device(), files[c.data].Inode()}]...)
			why := "its data are not in the payload"
			for _, j := range from {
				if d, ok := kept[j]; ok {
					conf.Data, conf.read = d, true
					break
				}
				if w, ok := skipped[j]; ok {
					why = w
					break
				}
			}
			if files[c.data].Size() == 0 {
				conf.read = true // empty: a mask
			}
			if !conf.read {
				r.problem(SeverityError, c.path, why)
			}
			if t := files[c.data].Name(); t != c.path {
				conf.Target = t
			}
		}
		r.Confs = append(r.Confs, conf)
	}
	sort.Slice(r.Confs, func(i, j int) bool { return r.Confs[i].Path < r.Confs[j].Path })
	return nil
}

// checkEntry compares an entry's header in the archive with the file in
// the package's header: its type, and a size no bigger than the header
// says (rpm would refuse the package; here the point is that nothing
// bigger is read).
func checkEntry(e cpioEntry, f rpmutils.FileInfo, plan *payloadPlan) error {
	if e.Mode&0o170000 != uint32(f.Mode())&0o170000 {
		return fmt.Errorf("%w: %s has mode %o in the payload and %o in the header", ErrMalformed, f.Name(), e.Mode, f.Mode())
	}
	want := int64(0)
	switch {
	case isRegular(f):
		want = f.Size()
		if len(plan.sets[linkKey{f.Device(), f.Inode()}]) > 1 && e.Size == 0 {
			want = 0
		}
	case f.Mode()&0o170000 == 0o120000:
		want = int64(len(f.Linkname()))
	}
	if e.Size != want {
		return fmt.Errorf("%w: %s has %d bytes of data in the payload, the header says %d", ErrMalformed, f.Name(), e.Size, want)
	}
	return nil
}
