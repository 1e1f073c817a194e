package mapper

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/ledger"
)

// Replay re-maps an incident from its newest stored raw record and queues it again, so that a
// fixed code map or a resolved outage takes effect. actor names who asked; it is written to the
// history. An incident waiting on a POST whose outcome is unknown is refused with
// ledger.ErrNotResolvable, decided in the same ledger write that would queue it, so that a
// send turning unknown just before cannot be repeated by a replay: that takes Resend.
func (mp *Mapper) Replay(ctx context.Context, ledgerKey, actor string) (*ledger.Entry, error) {
	return mp.replay(ctx, ledgerKey, actor, false)
}

// Resend is Replay for an incident whose POST had an unknown outcome: an operator has decided
// to send it again, so it goes out and is flagged as a possible duplicate.
func (mp *Mapper) Resend(ctx context.Context, ledgerKey, actor string) (*ledger.Entry, error) {
	return mp.replay(ctx, ledgerKey, actor, true)
}

func (mp *Mapper) replay(ctx context.Context, ledgerKey, actor string, resend bool) (*ledger.Entry, error) {
	e, err := mp.ledger.Get(ctx, ledgerKey)
	if err != nil {
		return nil, err
	}
	if e.RawSeq == 0 {
		return nil, ledger.ErrNoRawRecord
	}
	m, err := mp.q.RawMessage(ctx, e.RawSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, ledger.ErrNoRawRecord
		}
		return nil, fmt.Errorf("reading raw record: %w", err)
	}
	if actor == "" {
		actor = "operator"
	}
	if err := mp.mapRecord(ctx, Raw{Seq: m.Sequence, Header: m.Header, Data: m.Data}, actor, resend); err != nil {
		return nil, err
	}
	return mp.ledger.Get(ctx, ledgerKey)
}
