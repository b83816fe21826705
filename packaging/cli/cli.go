// lockstep-pkg builds and inspects Lockstep's macOS installer
// packages on any OS, in pure Go.
//
//	lockstep-pkg build --version V --daemon F [--daemon F2] --cli F [--cli F2] [--app DIR] --out PKG [--uninstall-out PKG]
//	lockstep-pkg uninstall --version V --out PKG
//	lockstep-pkg inspect [-q] PKG
//	lockstep-pkg lipo -o OUT THIN...
//	lockstep-pkg plist daemon|agent|info [--version V] [--icon] [-o FILE]
//	lockstep-pkg profile [--directory-url URL] [--token-stdin] [--organization ORG] [-o FILE]
//	lockstep-pkg scripts --version V --out DIR
//
// Every entry is stamped with --mtime, which defaults to
// $SOURCE_DATE_EPOCH (0 when unset), so the same inputs give the same bytes.
//
// Package cli is that command; cmd/lockstep-pkg only calls Main.
package cli

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep-dev/lockstep/packaging"
	"github.com/lockstep-dev/lockstep/packaging/launchd"
	"github.com/lockstep-dev/lockstep/packaging/macho"
	"github.com/lockstep-dev/lockstep/packaging/pkg"
	"github.com/lockstep-dev/lockstep/packaging/profile"
	"github.com/lockstep-dev/lockstep/packaging/scripts"
)

const usage = `usage:
  lockstep-pkg build --version V --daemon F [--daemon F2] --cli F [--cli F2] [--app DIR] --out PKG [--uninstall-out PKG] [--mtime N]
  lockstep-pkg uninstall --version V --out PKG [--mtime N]
  lockstep-pkg inspect [-q] PKG
  lockstep-pkg lipo -o OUT THIN...
  lockstep-pkg plist daemon|agent|info [--version V] [--icon] [-o FILE]
  lockstep-pkg profile [--directory-url URL] [--token-stdin] [--organization ORG] [-o FILE]
  lockstep-pkg scripts --version V --out DIR
`

// Main runs lockstep-pkg with args (without the program name) and returns
// its exit code.
func Main(args []string) int {
	if err := run(args, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lockstep-pkg:", err)
		return 1
	}
	return 0
}

// files is a repeatable flag.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func defaultMTime() int64 {
	n, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func readAll(paths []string) ([][]byte, error) {
	out := make([][]byte, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// writeFile writes atomically: a temporary file in the same directory,
// renamed into place.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeProduct(path string, p pkg.Product) error {
	var b bytes.Buffer
	if err := pkg.Build(&b, p); err != nil {
		return err
	}
	// Read it back before handing it out.
	if _, err := pkg.Inspect(bytes.NewReader(b.Bytes()), int64(b.Len())); err != nil {
		return fmt.Errorf("the package just built does not read back: %w", err)
	}
	return writeFile(path, b.Bytes(), 0o644)
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("lockstep-pkg "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parse := func() error {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%s: %w\n%s", cmd, err, usage)
		}
		return nil
	}
	switch cmd {
	case "build":
		var daemon, cli files
		version := fs.String("version", "", "package version")
		app := fs.String("app", "", "Lockstep.app built on a Mac (optional)")
		out := fs.String("out", "", "output .pkg")
		unOut := fs.String("uninstall-out", "", "also write the uninstall .pkg here")
		mtime := fs.Int64("mtime", defaultMTime(), "mtime of every entry (seconds)")
		fs.Var(&daemon, "daemon", "darwin lockstepd, one per architecture")
		fs.Var(&cli, "cli", "darwin lockstep CLI, one per architecture")
		if err := parse(); err != nil {
			return err
		}
		if *version == "" || *out == "" || len(daemon) == 0 || len(cli) == 0 || fs.NArg() != 0 {
			return errors.New("build needs --version, --out, --daemon and --cli\n" + usage)
		}
		d, err := readAll(daemon)
		if err != nil {
			return err
		}
		c, err := readAll(cli)
		if err != nil {
			return err
		}
		t := time.Unix(*mtime, 0)
		p, err := packaging.MainProduct(packaging.Inputs{Version: *version, MTime: t, Daemon: d, CLI: c, AppDir: *app})
		if err != nil {
			return err
		}
		if err := writeProduct(*out, p); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
		if *unOut != "" {
			u, err := packaging.UninstallProduct(*version, t)
			if err != nil {
				return err
			}
			if err := writeProduct(*unOut, u); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\n", *unOut)
		}
		return nil

	case "uninstall":
		version := fs.String("version", "", "package version")
		out := fs.String("out", "", "output .pkg")
		mtime := fs.Int64("mtime", defaultMTime(), "mtime of every entry (seconds)")
		if err := parse(); err != nil {
			return err
		}
		if *version == "" || *out == "" {
			return errors.New("uninstall needs --version and --out\n" + usage)
		}
		u, err := packaging.UninstallProduct(*version, time.Unix(*mtime, 0))
		if err != nil {
			return err
		}
		if err := writeProduct(*out, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *out)
		return nil

	case "inspect":
		quiet := fs.Bool("q", false, "print nothing; only the exit status tells")
		if err := parse(); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("inspect needs one package\n" + usage)
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		rep, err := pkg.Inspect(f, st.Size())
		if rep != nil && !*quiet {
			if werr := rep.WriteText(stdout); werr != nil {
				return werr
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		if !*quiet {
			fmt.Fprintf(stdout, "\nOK: every checksum verified; Bom, Payload, PackageInfo and Distribution agree\n")
		}
		return nil

	case "lipo":
		out := fs.String("o", "", "output universal binary")
		if err := parse(); err != nil {
			return err
		}
		if *out == "" || fs.NArg() == 0 {
			return errors.New("lipo needs -o and at least one input\n" + usage)
		}
		in, err := readAll(fs.Args())
		if err != nil {
			return err
		}
		fat, err := macho.Fat(in...)
		if err != nil {
			return err
		}
		return writeFile(*out, fat, 0o755)

	case "plist":
		if len(args) == 0 {
			return errors.New("plist needs daemon, agent or info\n" + usage)
		}
		kind := args[0]
		args = args[1:]
		version := fs.String("version", "dev", "version for the app's Info.plist")
		icon := fs.Bool("icon", false, "name "+launchd.IconFile+" as the app icon")
		out := fs.String("o", "", "output file (default stdout)")
		if err := parse(); err != nil {
			return err
		}
		var v any
		switch kind {
		case "daemon":
			v = launchd.Daemon()
		case "agent":
			v = launchd.MenuAgent()
		case "info":
			v = launchd.Info(*version, *icon)
		default:
			return fmt.Errorf("plist: unknown kind %q\n%s", kind, usage)
		}
		b, err := launchd.Marshal(v)
		if err != nil {
			return err
		}
		if *out == "" {
			_, err = stdout.Write(b)
			return err
		}
		return writeFile(*out, b, 0o644)

	case "profile":
		url := fs.String("directory-url", "", "DirectoryURL (wss://...); empty writes the template")
		tokenStdin := fs.Bool("token-stdin", false, "read EnrollmentToken from the first line of stdin (never from argv)")
		org := fs.String("organization", "", "PayloadOrganization")
		out := fs.String("o", "", "output file (default stdout)")
		if err := parse(); err != nil {
			return err
		}
		var b []byte
		if *url == "" && !*tokenStdin {
			b = profile.Template()
		} else {
			values := map[string]any{profile.KeyDirectoryURL: *url}
			if *tokenStdin {
				line, err := bufio.NewReader(stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if tok := strings.TrimSpace(line); tok != "" {
					values[profile.KeyEnrollmentToken] = tok
				}
			}
			var err error
			if b, err = profile.MobileConfig(profile.ProfileOptions{Values: values, Organization: *org}); err != nil {
				return err
			}
		}
		if *out == "" {
			_, err := stdout.Write(b)
			return err
		}
		// A filled profile may hold the enrollment token: owner-only.
		return writeFile(*out, b, 0o600)

	case "scripts":
		version := fs.String("version", "", "version")
		out := fs.String("out", "", "output directory")
		if err := parse(); err != nil {
			return err
		}
		if *version == "" || *out == "" {
			return errors.New("scripts needs --version and --out\n" + usage)
		}
		for _, name := range []string{scripts.Preinstall, scripts.Postinstall, scripts.Uninstall} {
			b, err := scripts.Render(name, scripts.Production(*version))
			if err != nil {
				return err
			}
			if err := writeFile(filepath.Join(*out, name), b, 0o755); err != nil {
				return err
			}
		}
		return nil

	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
