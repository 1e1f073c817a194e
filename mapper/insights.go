package mapper

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/insights"
	"github.com/psgw/psgw/ledger"
)

// RebuildInsights writes the learning store afresh from the raw stream: for every incident in
// the ledger, the fact of the raw record the ledger holds, mapped with the current code maps
// and enrichment as the mapper maps it, with the ledger's state; and it deletes the facts of
// incidents the ledger does not hold. So a backfill, a replay or a changed fact (a new field)
// is reflected without sending anything anywhere (docs/insights.md, "Rebuilding").
func (mp *Mapper) RebuildInsights(ctx context.Context) (insights.Rebuilt, error) {
	var out insights.Rebuilt
	store := mp.facts
	if store == nil {
		return out, errors.New("no learning store configured")
	}
	held := map[string]bool{}
	var failed error
	err := mp.ledger.List(ctx, func(key string, e *ledger.Entry) bool {
		held[key] = true
		if e.RawSeq == 0 {
			out.Missing++
			return true
		}
		m, err := mp.q.RawMessage(ctx, e.RawSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			out.Missing++
			return true
		}
		if err != nil {
			failed = err
			return false
		}
		r, ok, err := mp.read(ctx, Raw{Seq: m.Sequence, Header: m.Header, Data: m.Data})
		if err != nil {
			failed = err
			return false
		}
		if !ok {
			out.Missing++
			return true
		}
		if err := store.Put(ctx, key, r.fact(e)); err != nil {
			failed = err
			return false
		}
		out.Written++
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return out, fmt.Errorf("rebuilding insights: %w", err)
	}
	var stale []string
	if err := store.Keys(ctx, func(k string) {
		if !held[k] {
			stale = append(stale, k)
		}
	}); err != nil {
		return out, fmt.Errorf("listing insights facts: %w", err)
	}
	for _, k := range stale {
		if err := store.Delete(ctx, k); err != nil {
			return out, fmt.Errorf("deleting insights fact: %w", err)
		}
		out.Deleted++
	}
	return out, nil
}
