package ledger

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/test/jstest"
)

// BenchmarkLedgerUpdate is one ledger write as the mapper and forwarder make them: read the
// entry, change it, write it back with compare-and-set. Keys are spread over many incidents
// from 16 writers, as under load; sync=always is the default durability.
func BenchmarkLedgerUpdate(b *testing.B) {
	for _, syncAlways := range []bool{true, false} {
		name := "sync=always"
		if !syncAlways {
			name = "sync=1s"
		}
		b.Run(name, func(b *testing.B) {
			o := jstest.Options(b.TempDir())
			o.MaxStoreBytes, o.SyncAlways = 4<<30, syncAlways
			q := jstest.OpenWith(b, o)
			l := openLedger(b, q)
			ctx := context.Background()
			now := time.Now().UTC()
			var n atomic.Int64
			b.SetParallelism(8) // 16 writers with GOMAXPROCS 2
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					key := Key("datix", strconv.FormatInt(i%4096, 16))
					if _, err := l.Update(ctx, key, func(e *Entry, exists bool) error {
						if !exists {
							e.Source, e.LocalID, e.ReceivedAt = "datix", "INC-"+strconv.FormatInt(i, 10), now
						}
						e.Attempts++
						e.InFlight = &InFlight{Method: "POST", PayloadHash: "0123456789abcdef0123456789abcdef", RawSeq: uint64(i), StartedAt: now}
						e.Note(now, StateDelivering, "", "")
						if len(e.History) > 4 {
							e.History = e.History[:1] // keep entries the size of a normal incident's
						}
						return nil
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
