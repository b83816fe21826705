// Command lockstepd is Lockstep's root daemon. `lockstepd run` serves in the
// foreground (launchd and tests use it); install, uninstall, start, stop and
// status manage it as a system service through kardianos/service (launchd on
// macOS, systemd on Linux).
package main

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

	"github.com/lockstep-dev/lockstep/agent"
	"github.com/lockstep-dev/lockstep/agent/config"
	"github.com/lockstep-dev/lockstep/version"
)

const usage = `lockstepd: Lockstep's daemon.

Usage:
  lockstepd run [--config FILE] [--managed FILE]   run in the foreground
  lockstepd install [--config FILE]                 install as a system service
  lockstepd uninstall | start | stop | status
  lockstepd version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("lockstepd "+cmd, flag.ExitOnError)
	cfgFile := fs.String("config", config.DefaultFile, "configuration file (plist or JSON)")
	managed := fs.String("managed", config.DefaultManaged, `managed preferences (MDM); "" to ignore`)
	_ = fs.Parse(os.Args[2:])

	prg := &program{cfgFile: *cfgFile, managed: *managed}
	svc, err := service.New(prg, &service.Config{
		Name:        "dev.lockstep.agent",
		DisplayName: "Lockstep",
		Description: "Keeps this Mac's local, FileVault and keychain passwords in step with the directory.",
		Arguments:   []string{"run", "--config", *cfgFile},
		Option:      service.KeyValue{"KeepAlive": true, "RunAtLoad": true},
	})
	if err != nil {
		fatal(err)
	}
	switch cmd {
	case "run":
		if service.Interactive() {
			// In a terminal or a test: run until SIGINT/SIGTERM and report
			// a failure as the exit status.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := prg.run(ctx); err != nil {
				fatal(err)
			}
			return
		}
		if err := svc.Run(); err != nil {
			fatal(err)
		}
	case "install", "uninstall", "start", "stop":
		if err := service.Control(svc, cmd); err != nil {
			fatal(fmt.Errorf("%s: %w", cmd, err))
		}
		fmt.Printf("lockstepd: %s done\n", cmd)
	case "status":
		st, err := svc.Status()
		if err != nil {
			fatal(err)
		}
		fmt.Println(map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st])
	case "version":
		fmt.Println("lockstepd", version.Version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "lockstepd:", err)
	os.Exit(1)
}

// program adapts the daemon to kardianos/service.
type program struct {
	cfgFile, managed string

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// daemon loads the configuration and builds the daemon.
func (p *program) daemon() (*agent.Daemon, *slog.Logger, error) {
	cfg, err := config.Load(p.cfgFile, p.managed)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	level, _ := cfg.Level()
	ring := agent.NewLogRing(500)
	log := slog.New(ring.Handler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	d, err := agent.New(agent.Options{Config: cfg, Log: log, Ring: ring})
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
