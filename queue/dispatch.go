package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
)

// DispatchOptions configure Dispatch.
type DispatchOptions struct {
	// Workers is how many messages are handled at once (at least 1).
	Workers int
	// MaxHeld bounds the messages fetched and not yet handled, waiting ones included
	// (default 4 × Workers). It must stay below the consumer's MaxAckPending.
	MaxHeld int
	// Key names the unit of ordering, e.g. the incident a message belongs to. Messages with
	// the same key are handled one at a time in the order fetched; different keys in
	// parallel. The default is the message's subject.
	Key func(jetstream.Msg) string
	// Gate, when set, is called before every fetch and may block (for example while
	// delivery is paused); it returns when fetching may go on or ctx is done.
	Gate func(ctx context.Context)
	// AckWait is the consumer's AckWait. Every message Dispatch holds, waiting or being
	// handled, is reported in progress three times per AckWait, so that JetStream does not
	// deliver it again while it is still in hand (which would have it handled twice and
	// spend one of its deliveries). 0 sends no such reports.
	AckWait time.Duration
	// Logger receives fetch failures.
	Logger zerolog.Logger
}

// Dispatch fetches from cons until ctx is done and runs handle for every message, on up to
// Workers goroutines. A message whose key is being handled waits for it, in memory, without
// holding up messages of other keys: one slow or stuck incident never delays the others.
// handle owns the message (it must ack, nak or term it); when ctx is done it is still called
// for each message already fetched, so that it can hand the message back. Dispatch returns
// once every fetched message has been handled: nil when ctx is done, or an error when the
// consumer is gone (deleted by an operator, or lost with its stream), which fetching again
// cannot mend but creating it again can.
func Dispatch(ctx context.Context, cons jetstream.Consumer, o DispatchOptions, handle func(context.Context, jetstream.Msg)) error {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.MaxHeld < 1 {
		o.MaxHeld = 4 * o.Workers
	}
	o.MaxHeld = max(o.MaxHeld, o.Workers)
	if o.Key == nil {
		o.Key = func(m jetstream.Msg) string { return m.Subject() }
	}
	d := &dispatcher{
		held:    map[jetstream.Msg]struct{}{},
		waiting: map[string][]jetstream.Msg{},
		ready:   make(chan jetstream.Msg, o.MaxHeld),
		slots:   make(chan struct{}, o.MaxHeld),
		key:     o.Key,
	}
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for m := range d.ready {
				for m != nil {
					handle(ctx, m)
					d.done(m)
					<-d.slots
					m = d.next(m)
				}
			}
		})
	}
	stopBeat := make(chan struct{})
	var beat sync.WaitGroup
	if o.AckWait > 0 {
		beat.Go(func() { d.heartbeat(o.AckWait/3, stopBeat) })
	}
	var gone error
	for ctx.Err() == nil {
		if o.Gate != nil {
			if o.Gate(ctx); ctx.Err() != nil {
				break
			}
		}
		// Take at least one free slot (waiting while every slot is held), then as many more
		// as are free, and fetch no more than that.
		n := 0
		select {
		case d.slots <- struct{}{}:
			n = 1
		case <-ctx.Done():
		}
		for n > 0 && n < o.MaxHeld {
			select {
			case d.slots <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		if n == 0 {
			break
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			d.release(n)
			if err := CheckConsumerGone(ctx, cons, err); err != nil {
				gone = err
				break
			}
			if ctx.Err() == nil {
				o.Logger.Warn().Err(err).Msg("fetching messages failed; retrying")
				_ = backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		got := 0
		for m := range batch.Messages() {
			got++
			d.add(m)
		}
		d.release(n - got)
		// A consumer deleted while a fetch waits ends the batch with this error; any other
		// (an idle fetch ends without one) is backed off like a failed fetch.
		if err := batch.Error(); err != nil {
			if gerr := CheckConsumerGone(ctx, cons, err); gerr != nil {
				gone = gerr
				break
			}
			if ctx.Err() == nil {
				o.Logger.Warn().Err(err).Msg("fetching messages failed; retrying")
				_ = backoff.Sleep(ctx, time.Second)
			}
		}
	}
	close(d.ready)
	wg.Wait() // the workers hand back what they still hold
	close(stopBeat)
	beat.Wait()
	return gone
}

// CheckConsumerGone returns an error when the fetch error err means the consumer no longer exists.
// A pull from a deleted consumer mostly ends in "no responders", which a JetStream that is
// not answering at all gives too, so that case is settled by asking for the consumer.
func CheckConsumerGone(ctx context.Context, cons jetstream.Consumer, err error) error {
	if err == nil || ctx.Err() != nil {
		return nil
	}
	if !ConsumerGone(err) && errors.Is(err, nats.ErrNoResponders) {
		if _, infoErr := cons.Info(ctx); ConsumerGone(infoErr) {
			err = infoErr
		}
	}
	if ConsumerGone(err) {
		return fmt.Errorf("fetching: %w", err)
	}
	return nil
}

// ConsumerGone reports whether err says the consumer no longer exists: fetching from it again
// cannot work, creating it again can.
func ConsumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)
}

type dispatcher struct {
	mu sync.Mutex
	// held is every message fetched and not yet handled to the end.
	held map[jetstream.Msg]struct{}
	// waiting holds, for each key being handled, the messages of that key fetched since, in
	// order. A key is present exactly while one of its messages is being handled.
	waiting map[string][]jetstream.Msg
	ready   chan jetstream.Msg
	// slots holds one token per fetched message not yet handled.
	slots chan struct{}
	key   func(jetstream.Msg) string
}

// add starts m at once if no message of its key is being handled, else queues it behind.
func (d *dispatcher) add(m jetstream.Msg) {
	k := d.key(m)
	d.mu.Lock()
	d.held[m] = struct{}{}
	if q, busy := d.waiting[k]; busy {
		d.waiting[k] = append(q, m)
		d.mu.Unlock()
		return
	}
	d.waiting[k] = nil
	d.mu.Unlock()
	d.ready <- m // never blocks: ready has room for every slot
}

// next returns the message waiting behind done's key, or nil when there is none (and the key
// is free again).
func (d *dispatcher) next(done jetstream.Msg) jetstream.Msg {
	k := d.key(done)
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.waiting[k]
	if len(q) == 0 {
		delete(d.waiting, k)
		return nil
	}
	d.waiting[k] = q[1:]
	return q[0]
}

// done forgets m once handle has returned: it is acked, handed back or terminated.
func (d *dispatcher) done(m jetstream.Msg) {
	d.mu.Lock()
	delete(d.held, m)
	d.mu.Unlock()
}

// heartbeat reports every held message in progress each interval until stop is closed.
func (d *dispatcher) heartbeat(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		msgs = msgs[:0]
		for m := range d.held {
			msgs = append(msgs, m)
		}
		d.mu.Unlock()
		for _, m := range msgs {
			// A message acked meanwhile is ignored by the server.
			_ = m.InProgress()
		}
	}
}

func (d *dispatcher) release(n int) {
	for range n {
		<-d.slots
	}
}

// Sleep waits for d or until ctx is done, and then returns ctx's error, if any: the pause of
// a consumer that backs off before it tries the queue again.
//
// Deprecated: use backoff.Sleep (internal/backoff), which it calls.
func Sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }
