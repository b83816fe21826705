package pkg

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/packaging/bom"
	"github.com/lockstep-dev/lockstep/packaging/cpio"
	"github.com/lockstep-dev/lockstep/packaging/xar"
)

// Script names the Installer runs, in the order it runs them.
var scriptNames = []string{"preinstall", "postinstall"}

// Component is one component package of a product archive.
type Component struct {
	// Name is the component's directory in the archive ("Lockstep.pkg").
	Name string
	// ID is the package identifier the receipt carries.
	ID      string
	Version string
	// Payload is nil for a payload-free package (scripts only, no
	// receipt).
	Payload *Tree
	// Scripts maps "preinstall" and "postinstall" to POSIX sh scripts;
	// they are archived executable (0755).
	Scripts map[string][]byte
}

// Product is a distribution ("product archive") package, the form MDM
// InstallEnterpriseApplication and productsign expect.
type Product struct {
	Title string
	// HostArchitectures lists the architectures the product runs on
	// natively ("arm64,x86_64": no Rosetta prompt on Apple silicon).
	HostArchitectures string
	// MinOS is the oldest macOS version allowed.
	MinOS      string
	Components []Component
	// MTime is the modification time recorded for every payload and
	// scripts entry (from SOURCE_DATE_EPOCH for reproducible builds).
	MTime time.Time
}

type payloadInfo struct {
	NumberOfFiles int `xml:"numberOfFiles,attr"`
	InstallKBytes int `xml:"installKBytes,attr"`
}

type scriptRef struct {
	File string `xml:"file,attr"`
}

type scriptsInfo struct {
	Preinstall  *scriptRef `xml:"preinstall,omitempty"`
	Postinstall *scriptRef `xml:"postinstall,omitempty"`
}

// PackageInfo is a component's manifest.
type PackageInfo struct {
	XMLName           xml.Name     `xml:"pkg-info"`
	FormatVersion     string       `xml:"format-version,attr"`
	Identifier        string       `xml:"identifier,attr"`
	Version           string       `xml:"version,attr"`
	InstallLocation   string       `xml:"install-location,attr"`
	Auth              string       `xml:"auth,attr"`
	Relocatable       string       `xml:"relocatable,attr"`
	PostinstallAction string       `xml:"postinstall-action,attr"`
	GeneratorVersion  string       `xml:"generator-version,attr"`
	Payload           *payloadInfo `xml:"payload,omitempty"`
	Scripts           *scriptsInfo `xml:"scripts,omitempty"`
}

// Generator is the PackageInfo generator-version.
const Generator = "lockstep-pkg"

type distOptions struct {
	Customize         string `xml:"customize,attr"`
	RequireScripts    string `xml:"require-scripts,attr"`
	HostArchitectures string `xml:"hostArchitectures,attr"`
}

type distDomains struct {
	Anywhere        string `xml:"enable_anywhere,attr"`
	CurrentUserHome string `xml:"enable_currentUserHome,attr"`
	LocalSystem     string `xml:"enable_localSystem,attr"`
}

type osVersion struct {
	Min string `xml:"min,attr"`
}

type volumeCheck struct {
	OS osVersion `xml:"allowed-os-versions>os-version"`
}

type line struct {
	Choice string `xml:"choice,attr"`
	Lines  []line `xml:"line"`
}

type pkgRefID struct {
	ID string `xml:"id,attr"`
}

type choice struct {
	ID      string     `xml:"id,attr"`
	Visible string     `xml:"visible,attr,omitempty"`
	Title   string     `xml:"title,attr,omitempty"`
	PkgRefs []pkgRefID `xml:"pkg-ref"`
}

type pkgRef struct {
	ID            string `xml:"id,attr"`
	Version       string `xml:"version,attr"`
	OnConclusion  string `xml:"onConclusion,attr"`
	InstallKBytes int    `xml:"installKBytes,attr"`
	Auth          string `xml:"auth,attr"`
	Location      string `xml:",chardata"`
}

// Distribution is a product archive's installer script.
type Distribution struct {
	XMLName        xml.Name     `xml:"installer-gui-script"`
	MinSpecVersion string       `xml:"minSpecVersion,attr"`
	Title          string       `xml:"title"`
	Options        distOptions  `xml:"options"`
	Domains        distDomains  `xml:"domains"`
	VolumeCheck    *volumeCheck `xml:"volume-check,omitempty"`
	Outline        []line       `xml:"choices-outline>line"`
	Choices        []choice     `xml:"choice"`
	PkgRefs        []pkgRef     `xml:"pkg-ref"`
}

func marshalXML(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "    ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// gzipped compresses b with a header that holds no name and no time, so
// the same input gives the same bytes. The default level is pkgbuild's.
func gzipped(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func writeMember(w *cpio.Writer, name string, mode uint32, uid, gid uint32, mtime int64, data []byte) error {
	if err := w.WriteHeader(&cpio.Header{Name: name, Mode: mode, UID: uid, GID: gid, MTime: mtime, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// installKBytes follows pkgbuild: every entry but the root rounded up to
// 512-byte blocks, directories counted with the APFS size 32 × (children
// + 2), summed and rounded up to whole kilobytes.
func installKBytes(t *Tree) int {
	kids := t.children()
	var total int64
	for _, n := range t.nodes {
		if n.Path == "/" {
			continue
		}
		size := int64(len(n.Data))
		if n.Dir {
			size = 32 * int64(kids[n.Path]+2)
		}
		total += (size + 511) / 512 * 512
	}
	return int((total + 1023) / 1024)
}

type builtComponent struct {
	info                      PackageInfo
	bom, payload, scripts, pi []byte
}

func buildComponent(c Component, mtime int64) (*builtComponent, error) {
	if c.Name == "" || !strings.HasSuffix(c.Name, ".pkg") || strings.Contains(c.Name, "/") {
		return nil, fmt.Errorf("pkg: component name %q: want NAME.pkg", c.Name)
	}
	if c.ID == "" || c.Version == "" {
		return nil, errors.New("pkg: component without identifier or version")
	}
	bc := &builtComponent{info: PackageInfo{
		FormatVersion: "2", Identifier: c.ID, Version: c.Version, InstallLocation: "/", Auth: "root",
		Relocatable: "false", PostinstallAction: "none", GeneratorVersion: Generator,
	}}
	if c.Payload != nil {
		nodes := c.Payload.Nodes()
		kids := c.Payload.children()
		var cp bytes.Buffer
		cw := cpio.NewWriter(&cp)
		entries := make([]bom.Entry, 0, len(nodes))
		for _, n := range nodes {
			mode := n.Mode
			if n.Dir {
				mode |= cpio.TypeDir
			} else {
				mode |= cpio.TypeRegular
			}
			if err := writeMember(cw, dotPath(n.Path), mode, n.UID, n.GID, mtime, n.Data); err != nil {
				return nil, fmt.Errorf("pkg: payload: %w", err)
			}
			e := bom.Entry{Path: dotPath(n.Path), Mode: mode, UID: n.UID, GID: n.GID, MTime: uint32(mtime), Size: uint64(len(n.Data))}
			if n.Dir {
				e.Size = uint64(32 * (kids[n.Path] + 2))
			} else {
				e.Checksum = bom.Checksum(n.Data)
			}
			entries = append(entries, e)
		}
		if err := cw.Close(); err != nil {
			return nil, fmt.Errorf("pkg: payload: %w", err)
		}
		var err error
		if bc.payload, err = gzipped(cp.Bytes()); err != nil {
			return nil, fmt.Errorf("pkg: payload: %w", err)
		}
		var bb bytes.Buffer
		if err := bom.Write(&bb, entries); err != nil {
			return nil, fmt.Errorf("pkg: %w", err)
		}
		bc.bom = bb.Bytes()
		bc.info.Payload = &payloadInfo{NumberOfFiles: len(nodes), InstallKBytes: installKBytes(c.Payload)}
	}
	if len(c.Scripts) > 0 {
		var sp bytes.Buffer
		sw := cpio.NewWriter(&sp)
		if err := writeMember(sw, ".", cpio.TypeDir|0o755, 0, 0, mtime, nil); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(c.Scripts))
		for name := range c.Scripts {
			names = append(names, name)
		}
		sort.Strings(names)
		si := &scriptsInfo{}
		for _, name := range names {
			ref := &scriptRef{File: "./" + name}
			switch name {
			case "preinstall":
				si.Preinstall = ref
			case "postinstall":
				si.Postinstall = ref
			default:
				return nil, fmt.Errorf("pkg: unsupported script %q (want %s)", name, strings.Join(scriptNames, ", "))
			}
			body := c.Scripts[name]
			if !bytes.HasPrefix(body, []byte("#!")) {
				return nil, fmt.Errorf("pkg: script %s has no #! line", name)
			}
			if err := writeMember(sw, "./"+name, cpio.TypeRegular|0o755, 0, 0, mtime, body); err != nil {
				return nil, err
			}
		}
		if err := sw.Close(); err != nil {
			return nil, err
		}
		var err error
		if bc.scripts, err = gzipped(sp.Bytes()); err != nil {
			return nil, err
		}
		bc.info.Scripts = si
	}
	if c.Payload == nil && len(c.Scripts) == 0 {
		return nil, fmt.Errorf("pkg: %s has neither payload nor scripts", c.Name)
	}
	var err error
	if bc.pi, err = marshalXML(bc.info); err != nil {
		return nil, fmt.Errorf("pkg: PackageInfo: %w", err)
	}
	return bc, nil
}

// Build writes the product archive to w. The same Product gives the same
// bytes.
func Build(w io.Writer, p Product) error {
	if p.Title == "" || len(p.Components) == 0 {
		return errors.New("pkg: a product needs a title and at least one component")
	}
	mtime := p.MTime.Unix()
	if p.MTime.IsZero() || mtime < 0 {
		mtime = 0
	}
	dist := Distribution{
		MinSpecVersion: "2",
		Title:          p.Title,
		Options:        distOptions{Customize: "never", RequireScripts: "false", HostArchitectures: p.HostArchitectures},
		Domains:        distDomains{Anywhere: "false", CurrentUserHome: "false", LocalSystem: "true"},
		Choices:        []choice{{ID: "default"}},
	}
	if p.MinOS != "" {
		dist.VolumeCheck = &volumeCheck{OS: osVersion{Min: p.MinOS}}
	}
	outline := line{Choice: "default"}
	var files []xar.File
	seen := map[string]bool{}
	for _, c := range p.Components {
		if seen[c.Name] || seen[c.ID] {
			return fmt.Errorf("pkg: component %s/%s repeated", c.Name, c.ID)
		}
		seen[c.Name], seen[c.ID] = true, true
		bc, err := buildComponent(c, mtime)
		if err != nil {
			return err
		}
		kb := 0
		if bc.info.Payload != nil {
			kb = bc.info.Payload.InstallKBytes
		}
		outline.Lines = append(outline.Lines, line{Choice: c.ID})
		dist.Choices = append(dist.Choices, choice{ID: c.ID, Visible: "false", Title: p.Title, PkgRefs: []pkgRefID{{c.ID}}})
		dist.PkgRefs = append(dist.PkgRefs, pkgRef{ID: c.ID, Version: c.Version, OnConclusion: "none", InstallKBytes: kb, Auth: "root", Location: "#" + c.Name})
		if bc.bom != nil {
			files = append(files, xar.File{Name: c.Name + "/Bom", Data: bc.bom, Compress: true})
			files = append(files, xar.File{Name: c.Name + "/Payload", Data: bc.payload})
		}
		if bc.scripts != nil {
			files = append(files, xar.File{Name: c.Name + "/Scripts", Data: bc.scripts})
		}
		files = append(files, xar.File{Name: c.Name + "/PackageInfo", Data: bc.pi, Compress: true})
	}
	dist.Outline = []line{outline}
	db, err := marshalXML(dist)
	if err != nil {
		return fmt.Errorf("pkg: Distribution: %w", err)
	}
	files = append([]xar.File{{Name: "Distribution", Data: db, Compress: true}}, files...)
	return xar.Write(w, files)
}
