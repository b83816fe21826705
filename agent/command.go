package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/kardianos/service"

	"github.com/lockstep-dev/lockstep/agent/config"
)

// The lockstepd command: `lockstepd run` serves in the foreground (launchd
// and tests use it); install, uninstall, start, stop and status manage it as
// a system service through kardianos/service (launchd on macOS, systemd on
// Linux).

const usage = `lockstepd: Lockstep's daemon.

Usage:
  lockstepd run [--config FILE] [--managed FILE]   run in the foreground
  lockstepd install [--config FILE]                 install as a system service
  lockstepd uninstall | start | stop | status
  lockstepd version
`

// Main is the lockstepd command: args without the program name, version
// the build's. It returns the exit status.
func Main(args []string, version string) int {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("lockstepd "+cmd, flag.ContinueOnError)
	cfgFile := fs.String("config", config.DefaultFile, "configuration file (plist or JSON)")
	managed := fs.String("managed", config.DefaultManaged, `managed preferences (MDM); "" to ignore`)
	if fs.Parse(args[1:]) != nil {
		return 2
	}

	prg := &program{cfgFile: *cfgFile, managed: *managed, version: version}
	svc, err := service.New(prg, &service.Config{
		Name:        "dev.lockstep.agent",
		DisplayName: "Lockstep",
		Description: "Keeps this Mac's local, FileVault and keychain passwords in step with the directory.",
		Arguments:   []string{"run", "--config", *cfgFile},
		Option:      service.KeyValue{"KeepAlive": true, "RunAtLoad": true},
	})
	if err != nil {
		return fatal(err)
	}
	switch cmd {
	case "run":
		if service.Interactive() {
			// In a terminal or a test: run until SIGINT/SIGTERM and report
			// a failure as the exit status.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := prg.run(ctx); err != nil {
				return fatal(err)
			}
			return 0
		}
		if err := svc.Run(); err != nil {
			return fatal(err)
		}
	case "install", "uninstall", "start", "stop":
		if err := service.Control(svc, cmd); err != nil {
			return fatal(fmt.Errorf("%s: %w", cmd, err))
		}
		fmt.Printf("lockstepd: %s done\n", cmd)
	case "status":
		st, err := svc.Status()
		if err != nil {
			return fatal(err)
		}
		fmt.Println(map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st])
	case "version":
		fmt.Println("lockstepd", version)
	default:
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	return 0
}

func fatal(err error) int {
	fmt.Fprintln(os.Stderr, "lockstepd:", err)
	return 1
}

// program adapts the daemon to kardianos/service.
type program struct {
	cfgFile, managed, version string

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// daemon loads the configuration and builds the daemon.
func (p *program) daemon() (*Daemon, *slog.Logger, error) {
	cfg, err := config.Load(p.cfgFile, p.managed)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	level, _ := cfg.Level()
	ring := NewLogRing(500)
	log := slog.New(ring.Handler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	d, err := New(Options{Config: cfg, Log: log, Ring: ring, Version: p.version})
	if err != nil {
		return nil, nil, err
	}
	return d, log, nil
}

func (p *program) run(ctx context.Context) error {
	d, _, err := p.daemon()
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Start is called by the service manager.
func (p *program) Start(service.Service) error {
	d, log, err := p.daemon()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("lockstepd failed", "err", err)
			os.Exit(1) // launchd (KeepAlive) starts us again
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.once.Do(func() {
		if p.cancel != nil {
			p.cancel()
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
			}
		}
	})
	return nil
}
