package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/test/dockertest"
)

// mllpSource is an EPR sending ADT A08 over MLLP to both replicas: on a broken connection
// or an AE it sends the same message (same control id) to the other replica, as a source
// told "not stored, try again" does.
type mllpSource struct {
	e        *env
	aa, ae   atomic.Int64
	resent   atomic.Int64
	mu       sync.Mutex
	addrs    []string
	notAcked []string
}

func (s *mllpSource) refresh() {
	var addrs []string
	for _, r := range s.e.replicas {
		if addr, err := dockertest.Published(r, "2575"); err == nil {
			addrs = append(addrs, addr)
		}
	}
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
}

func (s *mllpSource) addr(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) == 0 {
		return ""
	}
	return s.addrs[i%len(s.addrs)]
}

// load sends n ADT messages named prefix from 2 connections, spread evenly over spread,
// each until it is acknowledged AA, or two minutes pass (then it is recorded as not
// acknowledged).
func (s *mllpSource) load(ctx context.Context, prefix string, n int, spread time.Duration) {
	s.refresh()
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for w := range 2 {
		wg.Go(func() {
			var cl *mllptest.Client
			defer func() {
				if cl != nil {
					cl.Close()
				}
			}()
			turn := w
			for i := int(next.Add(1)); i <= n && ctx.Err() == nil; i = int(next.Add(1)) {
				if wait := time.Until(start.Add(spread * time.Duration(i-1) / time.Duration(n))); wait > 0 {
					time.Sleep(wait)
				}
				control := fmt.Sprintf("%s%06d", prefix, i)
				msg := mllptest.ADT("A08", control, time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), mllptest.Patient{
					Local: fmt.Sprintf("%s%06d", prefix, i), DOB: "19750301", Sex: "F", Ethnicity: "A", Location: "WARD7",
				})
				deadline := time.Now().Add(2 * time.Minute)
				for tries := 0; ; tries++ {
					if time.Now().After(deadline) || ctx.Err() != nil {
						s.mu.Lock()
						s.notAcked = append(s.notAcked, control)
						s.mu.Unlock()
						break
					}
					if tries > 0 {
						s.resent.Add(1)
					}
					if cl == nil {
						addr := s.addr(turn)
						turn++
						if addr == "" {
							s.refresh()
							time.Sleep(200 * time.Millisecond)
							continue
						}
						dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						c, err := mllptest.Dial(dctx, addr, nil)
						cancel()
						if err != nil {
							s.refresh()
							time.Sleep(200 * time.Millisecond)
							continue
						}
						cl = c
					}
					_ = cl.Conn.SetDeadline(time.Now().Add(40 * time.Second))
					ack, err := cl.Send(msg)
					if err == nil && ack.Code == "AA" {
						s.aa.Add(1)
						break
					}
					if err == nil && ack.Code == "AR" {
						s.mu.Lock()
						s.notAcked = append(s.notAcked, control+" (AR: "+ack.Text+")")
						s.mu.Unlock()
						break
					}
					if err == nil {
						s.ae.Add(1)
					}
					cl.Close()
					cl = nil
					time.Sleep(500 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// check fails t for every message never acknowledged.
func (s *mllpSource) check(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notAcked) > 0 {
		t.Errorf("%d ADT messages over MLLP never acknowledged AA within 2 minutes, e.g. %s", len(s.notAcked), s.notAcked[0])
	}
}
