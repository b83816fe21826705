package pkg

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lockstep-dev/lockstep/packaging/bom"
	"github.com/lockstep-dev/lockstep/packaging/cpio"
	"github.com/lockstep-dev/lockstep/packaging/xar"
)

// maxArchive bounds what the reader inflates from one Payload or Scripts
// archive.
const maxArchive = 1 << 30

// Member is one entry of a Payload or Scripts archive.
type Member struct {
	// Path is "." or "./a/b".
	Path string
	// Mode is the st_mode, type bits included.
	Mode  uint32
	UID   uint32
	GID   uint32
	MTime int64
	Data  []byte
}

// IsDir reports whether m is a directory.
func (m Member) IsDir() bool { return m.Mode&cpio.TypeMask == cpio.TypeDir }

// ComponentReport is what a component package holds.
type ComponentReport struct {
	Name    string
	Info    PackageInfo
	RawInfo []byte
	Bom     []bom.Entry
	Payload []Member
	Scripts []Member
}

// Report is a package read back and checked.
type Report struct {
	// TOC lists the xar entries.
	TOC             []xar.Entry
	Distribution    *Distribution
	RawDistribution []byte
	Components      []ComponentReport
}

// ErrInconsistent reports a package whose parts disagree with each other.
var ErrInconsistent = errors.New("pkg: inconsistent package")

func readArchive(data []byte) ([]Member, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	r := cpio.NewReader(io.LimitReader(zr, maxArchive))
	var out []Member
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !h.IsDir() && !h.IsRegular() {
			return nil, fmt.Errorf("%s: unsupported file type %#o", h.Name, h.Mode&cpio.TypeMask)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out = append(out, Member{Path: h.Name, Mode: h.Mode, UID: h.UID, GID: h.GID, MTime: h.MTime, Data: b})
	}
	// The gzip stream must end with the archive: its CRC is checked at EOF.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, err
	}
	return out, nil
}

// Inspect reads a flat package (product archive or bare component) and
// checks it: every xar checksum, the Bom against the Payload (paths,
// modes, owners, sizes, cksum CRCs), PackageInfo's counts against the
// Payload, the scripts it names, and the Distribution's references. It
// returns the report and, if a check failed, an error wrapping
// ErrInconsistent (or the format error of the part that could not be
// read).
func Inspect(r io.ReaderAt, size int64) (*Report, error) {
	a, err := xar.Open(r, size)
	if err != nil {
		return nil, err
	}
	if err := a.Verify(); err != nil {
		return nil, err
	}
	rep := &Report{TOC: a.Entries}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	roots := map[string]bool{}
	for _, e := range a.Entries {
		if path.Base(e.Path) == "PackageInfo" && e.Type == "file" {
			roots[path.Dir(e.Path)] = true
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: no PackageInfo", ErrInconsistent)
	}
	names := make([]string, 0, len(roots))
	for n := range roots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, dir := range names {
		prefix := dir + "/"
		if dir == "." {
			prefix = ""
		}
		c := ComponentReport{Name: dir}
		if c.RawInfo, err = a.ReadFile(prefix + "PackageInfo"); err != nil {
			return nil, err
		}
		if err := xml.Unmarshal(c.RawInfo, &c.Info); err != nil {
			return nil, fmt.Errorf("%w: %s/PackageInfo: %v", ErrInconsistent, dir, err)
		}
		bomData, bomErr := a.ReadFile(prefix + "Bom")
		payData, payErr := a.ReadFile(prefix + "Payload")
		switch {
		case bomErr == nil && payErr == nil:
			if c.Bom, err = bom.Read(bomData); err != nil {
				return nil, fmt.Errorf("%s/Bom: %w", dir, err)
			}
			if c.Payload, err = readArchive(payData); err != nil {
				return nil, fmt.Errorf("%w: %s/Payload: %v", ErrInconsistent, dir, err)
			}
			checkPayload(dir, c, bad)
		case bomErr == nil || payErr == nil:
			bad("%s: Bom and Payload must come together", dir)
		default:
			if c.Info.Payload != nil && c.Info.Payload.NumberOfFiles != 0 {
				bad("%s: PackageInfo declares a payload the package lacks", dir)
			}
		}
		if sd, err := a.ReadFile(prefix + "Scripts"); err == nil {
			if c.Scripts, err = readArchive(sd); err != nil {
				return nil, fmt.Errorf("%w: %s/Scripts: %v", ErrInconsistent, dir, err)
			}
		}
		checkScripts(dir, c, bad)
		rep.Components = append(rep.Components, c)
	}

	if d, err := a.ReadFile("Distribution"); err == nil {
		rep.RawDistribution = d
		rep.Distribution = &Distribution{}
		if err := xml.Unmarshal(d, rep.Distribution); err != nil {
			return nil, fmt.Errorf("%w: Distribution: %v", ErrInconsistent, err)
		}
		checkDistribution(rep, bad)
	} else if len(rep.Components) > 1 || rep.Components[0].Name != "." {
		bad("component directories without a Distribution")
	}
	if len(problems) > 0 {
		return rep, fmt.Errorf("%w:\n  %s", ErrInconsistent, strings.Join(problems, "\n  "))
	}
	return rep, nil
}

func checkPayload(dir string, c ComponentReport, bad func(string, ...any)) {
	if len(c.Payload) == 0 || c.Payload[0].Path != "." {
		bad("%s: the Payload does not start with \".\"", dir)
		return
	}
	if len(c.Bom) != len(c.Payload) {
		bad("%s: Bom lists %d paths, Payload holds %d", dir, len(c.Bom), len(c.Payload))
	}
	seen := map[string]bool{}
	kids := map[string]int{}
	for _, m := range c.Payload {
		if m.Path != "." {
			p := strings.TrimPrefix(m.Path, "./")
			if !strings.HasPrefix(m.Path, "./") || path.Clean(p) != p || strings.HasPrefix(p, "../") {
				bad("%s: bad payload path %q", dir, m.Path)
			}
			parent := dotParent(m.Path)
			if !seen[parent] {
				bad("%s: %s comes before its directory", dir, m.Path)
			}
			kids[parent]++
		}
		if seen[m.Path] {
			bad("%s: %s twice in the Payload", dir, m.Path)
		}
		seen[m.Path] = true
	}
	inBom := map[string]bom.Entry{}
	for _, b := range c.Bom {
		inBom[b.Path] = b
	}
	for _, m := range c.Payload {
		b, ok := inBom[m.Path]
		if !ok {
			bad("%s: %s is in the Payload but not in the Bom", dir, m.Path)
			continue
		}
		if b.Mode != m.Mode || b.UID != m.UID || b.GID != m.GID || int64(b.MTime) != m.MTime {
			bad("%s: %s: Bom says %o %d/%d mtime %d, Payload %o %d/%d mtime %d", dir,
				m.Path, b.Mode, b.UID, b.GID, b.MTime, m.Mode, m.UID, m.GID, m.MTime)
			continue
		}
		if !m.IsDir() && (b.Size != uint64(len(m.Data)) || b.Checksum != bom.Checksum(m.Data)) {
			bad("%s: %s: Bom size/cksum %d/%d, Payload %d/%d", dir, m.Path, b.Size, b.Checksum, len(m.Data), bom.Checksum(m.Data))
		}
	}
	if c.Info.Payload == nil {
		bad("%s: PackageInfo has no payload element", dir)
		return
	}
	if c.Info.Payload.NumberOfFiles != len(c.Payload) {
		bad("%s: numberOfFiles %d, Payload holds %d", dir, c.Info.Payload.NumberOfFiles, len(c.Payload))
	}
	var total int64
	for _, m := range c.Payload {
		if m.Path == "." {
			continue
		}
		size := int64(len(m.Data))
		if m.IsDir() {
			size = 32 * int64(kids[m.Path]+2)
		}
		total += (size + 511) / 512 * 512
	}
	if kb := int((total + 1023) / 1024); c.Info.Payload.InstallKBytes != kb {
		bad("%s: installKBytes %d, Payload needs %d", dir, c.Info.Payload.InstallKBytes, kb)
	}
}

// dotParent returns the parent of "./a/b" ("./a"), "." for "./a".
func dotParent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 1 {
		return "."
	}
	return p[:i]
}

func checkScripts(dir string, c ComponentReport, bad func(string, ...any)) {
	declared := map[string]bool{}
	if s := c.Info.Scripts; s != nil {
		if s.Preinstall != nil {
			declared[s.Preinstall.File] = true
		}
		if s.Postinstall != nil {
			declared[s.Postinstall.File] = true
		}
	}
	have := map[string]Member{}
	for _, m := range c.Scripts {
		have[m.Path] = m
	}
	for f := range declared {
		m, ok := have[f]
		switch {
		case !ok:
			bad("%s: PackageInfo names script %s, Scripts lacks it", dir, f)
		case m.Mode&0o111 != 0o111 || m.Mode&cpio.TypeMask != cpio.TypeRegular:
			bad("%s: script %s is not an executable file (mode %o)", dir, f, m.Mode)
		case !bytes.HasPrefix(m.Data, []byte("#!")):
			bad("%s: script %s has no #! line", dir, f)
		}
	}
	if len(c.Scripts) > 0 && len(declared) == 0 {
		bad("%s: a Scripts archive but no scripts in PackageInfo", dir)
	}
}

func checkDistribution(rep *Report, bad func(string, ...any)) {
	d := rep.Distribution
	byName := map[string]ComponentReport{}
	for _, c := range rep.Components {
		byName[c.Name] = c
	}
	refs := 0
	for _, r := range d.PkgRefs {
		loc := strings.TrimSpace(r.Location)
		if loc == "" {
			continue
		}
		refs++
		c, ok := byName[strings.TrimPrefix(loc, "#")]
		if !strings.HasPrefix(loc, "#") || !ok {
			bad("Distribution: pkg-ref %s points at %q, which is not in the package", r.ID, loc)
			continue
		}
		if c.Info.Identifier != r.ID || c.Info.Version != r.Version {
			bad("Distribution: pkg-ref %s %s, PackageInfo %s %s", r.ID, r.Version, c.Info.Identifier, c.Info.Version)
		}
	}
	if refs != len(rep.Components) {
		bad("Distribution references %d components, the package holds %d", refs, len(rep.Components))
	}
	if d.Title == "" {
		bad("Distribution has no title")
	}
}

func modeString(mode uint32) string {
	var b strings.Builder
	switch mode & cpio.TypeMask {
	case cpio.TypeDir:
		b.WriteByte('d')
	case cpio.TypeRegular:
		b.WriteByte('-')
	default:
		b.WriteByte('?')
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			b.WriteByte(rwx[i])
		} else {
			b.WriteByte('-')
		}
	}
	s := []byte(b.String())
	if mode&0o4000 != 0 {
		s[3] = "Ss"[mode>>6&1]
	}
	if mode&0o2000 != 0 {
		s[6] = "Ss"[mode>>3&1]
	}
	return string(s)
}

// WriteText prints the report for a human: the xar TOC, each component's
// PackageInfo, its Bom as lsbom prints it, and its Payload and Scripts
// listings with modes, owners and sizes.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "== xar table of contents")
	for _, e := range r.TOC {
		if e.Type == "directory" {
			fmt.Fprintf(tw, "%s/\t%s\t%s:%s\t\t\n", e.Path, e.Mode, e.User, e.Group)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%d bytes\t%s, %s\n", e.Path, e.Mode, e.User, e.Group, e.Size, e.Encoding, e.ExtractedSum)
	}
	if r.Distribution != nil {
		d := r.Distribution
		fmt.Fprintf(tw, "\n== Distribution: %q, hostArchitectures=%s", d.Title, d.Options.HostArchitectures)
		if d.VolumeCheck != nil {
			fmt.Fprintf(tw, ", macOS >= %s", d.VolumeCheck.OS.Min)
		}
		fmt.Fprintln(tw)
		for _, p := range d.PkgRefs {
			fmt.Fprintf(tw, "pkg-ref %s %s -> %s (%d KB)\n", p.ID, p.Version, strings.TrimSpace(p.Location), p.InstallKBytes)
		}
	}
	for _, c := range r.Components {
		fmt.Fprintf(tw, "\n== %s: %s %s, install-location %s, auth %s\n", c.Name, c.Info.Identifier, c.Info.Version, c.Info.InstallLocation, c.Info.Auth)
		if c.Info.Payload != nil {
			fmt.Fprintf(tw, "payload: %d files, %d KB\n", c.Info.Payload.NumberOfFiles, c.Info.Payload.InstallKBytes)
		}
		if len(c.Bom) > 0 {
			fmt.Fprintf(tw, "-- Bom (lsbom)\n")
			tw.Flush()
			io.WriteString(w, bom.Listing(c.Bom))
		}
		for _, part := range []struct {
			name string
			ms   []Member
		}{{"Payload", c.Payload}, {"Scripts", c.Scripts}} {
			if len(part.ms) == 0 {
				continue
			}
			fmt.Fprintf(tw, "-- %s\n", part.name)
			for _, m := range part.ms {
				fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\n", modeString(m.Mode), m.UID, m.GID, len(m.Data), m.Path)
			}
		}
	}
	return tw.Flush()
}
