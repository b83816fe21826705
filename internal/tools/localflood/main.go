// Command localflood is a load generator for lockstepd's local API, for
// the tests and benchmarks of its limits: run as one local user, it opens
// as many watch streams and idle connections as lockstepd lets it hold, or
// measures how long status requests take while another user does that.
//
//	localflood -socket S -hold -watches 20000 -conns 20000   # prints what it holds, holds until stdin closes
//	localflood -socket S -status 50                          # prints status latencies
//
// It prints one JSON object on stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstep-dev/lockstep/localapi"
)

func main() {
	socket := flag.String("socket", localapi.DefaultSocket, "lockstepd's socket")
	hold := flag.Bool("hold", false, "open watch streams and idle connections and hold them until stdin closes")
	watches := flag.Int("watches", 0, "watch streams to try to open (-hold)")
	conns := flag.Int("conns", 0, "idle connections to try to open after the watches (-hold)")
	status := flag.Int("status", 0, "status requests to time, one connection each")
	flag.Parse()
	var out any
	switch {
	case *hold:
		out = holdStreams(*socket, *watches, *conns)
	case *status > 0:
		out = timeStatus(*socket, *status)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
	if *hold {
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until stdin closes
	}
}

// Held is what -hold reports.
type Held struct {
	WatchesHeld    int    `json:"watches_held"`
	WatchesRefused int    `json:"watches_refused"` // answered too_many, or closed at accept
	WatchErrors    int    `json:"watch_errors"`    // neither: a dial or read failure
	ConnsHeld      int    `json:"conns_held"`
	ConnsRefused   int    `json:"conns_refused"`
	FirstError     string `json:"first_error,omitempty"`
}

var held []net.Conn // kept open until the process exits

func holdStreams(socket string, watches, conns int) Held {
	var h Held
	var mu sync.Mutex
	var firstErr atomic.Value
	fail := func(err error) {
		firstErr.CompareAndSwap(nil, err.Error())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(watches) {
				c, code, err := openWatch(socket)
				mu.Lock()
				switch {
				case err == nil && code == http.StatusOK:
					h.WatchesHeld++
					held = append(held, c)
					go io.Copy(io.Discard, c) // read the stream, as the app does
				case err == nil && code == http.StatusTooManyRequests, errors.Is(err, errClosedAtAccept):
					h.WatchesRefused++
				default:
					h.WatchErrors++
					if err == nil {
						err = fmt.Errorf("watch answered %d", code)
					}
					fail(err)
				}
				mu.Unlock()
				if c != nil && code != http.StatusOK {
					c.Close()
				}
			}
		}()
	}
	wg.Wait()
	var idle []net.Conn
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("unix", socket, 5*time.Second)
		if err != nil {
			fail(err)
			break
		}
		idle = append(idle, c)
	}
	// A connection over the share is closed as soon as it is accepted.
	time.Sleep(500 * time.Millisecond)
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			h.ConnsHeld++
			c.SetReadDeadline(time.Time{})
			held = append(held, c)
		} else {
			h.ConnsRefused++
			c.Close()
		}
	}
	if v := firstErr.Load(); v != nil {
		h.FirstError = v.(string)
	}
	return h
}

var errClosedAtAccept = errors.New("connection closed before an answer")

func openWatch(socket string) (net.Conn, int, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET "+localapi.PathWatch+" HTTP/1.1\r\nHost: "+localapi.Host+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, 0, errClosedAtAccept
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return nil, 0, errClosedAtAccept
		}
		return nil, 0, err
	}
	c.SetDeadline(time.Time{})
	return c, resp.StatusCode, nil
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// Timing is what -status reports.
type Timing struct {
	N          int     `json:"n"`
	Errors     int     `json:"errors"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func timeStatus(socket string, n int) Timing {
	t := Timing{N: n}
	var took []time.Duration
	// A fresh connection each time, as each `lockstep status` makes.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	for i := 0; i < n; i++ {
		start := time.Now()
		err := getStatus(hc)
		d := time.Since(start)
		took = append(took, d)
		if err != nil {
			t.Errors++
			if t.FirstError == "" {
				t.FirstError = err.Error()
			}
		}
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	t.P50ms, t.P99ms, t.MaxMs = ms(took[len(took)/2]), ms(took[min(len(took)-1, len(took)*99/100)]), ms(took[len(took)-1])
	return t
}

func getStatus(hc *http.Client) error {
	resp, err := hc.Get("http://" + localapi.Host + localapi.PathStatus)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st localapi.Status
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status answered %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(&st)
}
