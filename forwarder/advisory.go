package forwarder

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// maxDeliver is the outbox consumer's delivery limit. The ledger's attempt budget normally ends
// an incident first; this is the net under it (for example a ledger that kept failing to
// write), and when it is reached JetStream stops redelivering the message. That would leave it
// sitting unnoticed, so the advisory is watched and the incident marked failed.
func (f *Forwarder) maxDeliver() int {
	return f.cfg.MaxAttempts + 25
}

// maxDeliveriesAdvisory is the subset of JetStream's max-deliveries advisory psgw reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries subscribes to the advisory for the outbox consumer.
func (f *Forwarder) watchMaxDeliveries(ctx context.Context) (func(), error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + queue.OutboxStream + "." + consumerName
	sub, err := f.q.Conn().Subscribe(subject, func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &adv); err != nil {
			f.log.Error().Err(err).Msg("unreadable max-deliveries advisory")
			return
		}
		if err := f.failUndeliverable(ctx, adv); err != nil {
			f.log.Error().Err(err).Uint64("seq", adv.StreamSeq).Msg("could not mark an undeliverable outbox message failed")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to max-deliveries advisories: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// failUndeliverable marks the incident of an outbox message that reached the delivery limit as
// failed (replayable), then removes the message, which JetStream would otherwise keep forever.
func (f *Forwarder) failUndeliverable(ctx context.Context, adv maxDeliveriesAdvisory) error {
	s, err := f.q.JetStream().Stream(ctx, queue.OutboxStream)
	if err != nil {
		return err
	}
	msg, err := s.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return fmt.Errorf("reading outbox message: %w", err)
	}
	env, err := queue.ReadOutboxEnvelope(msg.Header)
	if err != nil {
		if rerr := f.recordUnreadable(ctx, env, err); rerr != nil {
			return rerr
		}
		if derr := s.DeleteMsg(ctx, adv.StreamSeq); derr != nil {
			return derr
		}
		f.logUnreadable(env, adv.StreamSeq, err)
		return nil
	}
	detail := "delivery attempted " + strconv.FormatUint(adv.Deliveries, 10) + " times without a recorded outcome; replay it once the cause is fixed"
	var state ledger.State
	_, err = f.ledger.Update(ctx, ledger.Key(env.Source, env.Key), func(e *ledger.Entry, _ bool) error {
		var err error
		state, err = e.Undeliverable(f.now().UTC(), env.RawSeq, detail)
		return err
	})
	if err != nil {
		return err
	}
	if state == ledger.StateUnknown {
		f.cfg.Metrics.Failed.WithLabelValues("unknown").Inc()
	} else {
		f.cfg.Metrics.Failed.WithLabelValues("max_deliveries").Inc()
	}
	f.log.Error().Str("source", env.Source).Str("incident", env.Key).Uint64("deliveries", adv.Deliveries).Str("state", string(state)).
		Msg("outbox message reached its delivery limit; incident needs an operator")
	return s.DeleteMsg(ctx, adv.StreamSeq)
}
