package mapper

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/forwarder"
)

// ErrNoRawRecord means the incident's raw record is no longer kept (older than
// queue.raw_max_age), so it cannot be re-mapped; the source must send it again.
var ErrNoRawRecord = errors.New("raw record no longer kept")

// Replay re-maps an incident from its newest stored raw record and queues it again, so that a
// fixed code map or a resolved outage takes effect. actor names who asked; it is written to the
// history. Replaying an incident whose POST had an unknown outcome sends it again and flags it
// as a possible duplicate.
func (mp *Mapper) Replay(ctx context.Context, ledgerKey, actor string) (*forwarder.Entry, error) {
	e, err := mp.ledger.Get(ctx, ledgerKey)
	if err != nil {
		return nil, err
	}
	if e.RawSeq == 0 {
		return nil, ErrNoRawRecord
	}
	m, err := mp.q.RawMessage(ctx, e.RawSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, ErrNoRawRecord
		}
		return nil, fmt.Errorf("reading raw record: %w", err)
	}
	if actor == "" {
		actor = "operator"
	}
	if err := mp.Map(ctx, Raw{Seq: m.Sequence, Header: m.Header, Data: m.Data}, actor); err != nil {
		return nil, err
	}
	return mp.ledger.Get(ctx, ledgerKey)
}
