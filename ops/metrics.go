package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// scrapeTimeout bounds the JetStream requests one scrape makes, so that a sick queue makes
// the scrape report psgw_jetstream_up 0 rather than hang Prometheus.
const scrapeTimeout = 5 * time.Second

// collector reads the gateway's state at scrape time: ledger counts from the index, the
// outbox and every JetStream stream and consumer, readiness. Nothing here counts events as
// they happen; the forwarder and the ingest runner own those counters.
type collector struct {
	s *Server

	incidents, needsReview, outboxDepth, outboxAge, ready, jsUp, info, indexLoading *prometheus.Desc
	streamMsgs, streamBytes, streamMaxBytes, streamConsumers, streamFirstAge        *prometheus.Desc
	consPending, consAckPending, consRedelivered, consWaiting                       *prometheus.Desc
	delivered5m, stageUp, stageRestarts                                             *prometheus.Desc
	storeUsed, storeLimit, diskFree, diskTotal                                      *prometheus.Desc
}

func (s *Server) collector() *collector {
	d := prometheus.NewDesc
	return &collector{s: s,
		incidents:       d("psgw_ledger_incidents", "Incidents in the delivery ledger, by delivery state.", []string{"state"}, nil),
		needsReview:     d("psgw_ledger_needs_review", "Incidents in unknown, failed, rejected or quarantined that no operator has marked reviewed, by state.", []string{"state"}, nil),
		indexLoading:    d("psgw_ledger_index_loading", "1 while the status index is still reading the ledger at start-up (counts incomplete).", nil, nil),
		outboxDepth:     d("psgw_outbox_depth", "Mapped incidents waiting in the outbox stream for delivery (including held and retrying).", nil, nil),
		outboxAge:       d("psgw_outbox_oldest_age_seconds", "Age of the oldest undelivered event: seconds since the first message still in the outbox was queued; 0 when empty.", nil, nil),
		delivered5m:     d("psgw_delivered_last_5m", "Incidents delivered in the last five minutes, from the ledger (survives restarts).", nil, nil),
		ready:           d("psgw_ready", "1 when the gateway can accept and durably store records (as /readyz); a delivery pause shows in psgw_forwarder_paused and psgw_forwarder_outage instead.", nil, nil),
		jsUp:            d("psgw_jetstream_up", "1 when this scrape could read JetStream stream information.", nil, nil),
		info:            d("psgw_build_info", "Always 1; labels say the version, taxonomy version and whether demo mode is on.", []string{"version", "taxonomy_version", "demo"}, nil),
		streamMsgs:      d("psgw_jetstream_stream_messages", "Messages held in a JetStream stream (the raw, outbox and key-value streams).", []string{"stream"}, nil),
		streamBytes:     d("psgw_jetstream_stream_bytes", "Bytes held in a JetStream stream.", []string{"stream"}, nil),
		streamMaxBytes:  d("psgw_jetstream_stream_max_bytes", "A stream's byte limit (-1 for none); ingest is refused when PSGW_RAW reaches it.", []string{"stream"}, nil),
		streamConsumers: d("psgw_jetstream_stream_consumers", "Consumers on a stream.", []string{"stream"}, nil),
		streamFirstAge:  d("psgw_jetstream_stream_first_age_seconds", "Seconds since the oldest message a stream holds was stored; 0 when empty.", []string{"stream"}, nil),
		consPending:     d("psgw_jetstream_consumer_pending", "Messages a consumer has not yet been sent.", []string{"stream", "consumer"}, nil),
		consAckPending:  d("psgw_jetstream_consumer_ack_pending", "Messages sent to a consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil),
		consRedelivered: d("psgw_jetstream_consumer_redelivered", "Messages a consumer has had redelivered at least once and not yet acknowledged.", []string{"stream", "consumer"}, nil),
		consWaiting:     d("psgw_jetstream_consumer_waiting", "Pull requests waiting on a consumer.", []string{"stream", "consumer"}, nil),
		stageUp:         d("psgw_stage_up", "1 while a pipeline stage (mapper, forwarder, patients) runs; 0 while it waits to be restarted.", []string{"stage"}, nil),
		stageRestarts:   d("psgw_stage_restarts_total", "Times a pipeline stage was run again after it stopped with an error.", []string{"stage"}, nil),
		storeUsed:       d("psgw_jetstream_store_bytes", "JetStream file storage in use, every stream and bucket together.", nil, nil),
		storeLimit:      d("psgw_jetstream_store_limit_bytes", "JetStream file storage limit: queue.max_store_bytes when embedded, else the account's (-1 for none).", nil, nil),
		diskFree:        d("psgw_data_dir_free_bytes", "Bytes free for psgw on the file system holding data_dir (embedded store only).", nil, nil),
		diskTotal:       d("psgw_data_dir_size_bytes", "Size of the file system holding data_dir (embedded store only).", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.incidents, c.needsReview, c.indexLoading, c.outboxDepth, c.outboxAge, c.delivered5m,
		c.ready, c.jsUp, c.info, c.streamMsgs, c.streamBytes, c.streamMaxBytes, c.streamConsumers, c.streamFirstAge,
		c.consPending, c.consAckPending, c.consRedelivered, c.consWaiting, c.stageUp, c.stageRestarts,
		c.storeUsed, c.storeLimit, c.diskFree, c.diskTotal} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, now := c.s, time.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	demo := "false"
	if s.Demo {
		demo = "true"
	}
	gauge(c.info, 1, s.Version, strconv.Itoa(s.TaxonomyVersion), demo)

	if counts, err := s.Ledger.Counts(ctx); err == nil {
		for _, st := range ledger.States() {
			gauge(c.incidents, float64(counts.States[st]), string(st))
		}
		for _, st := range ledger.AttentionStates() {
			gauge(c.needsReview, float64(counts.NeedsReview[st]), string(st))
		}
		gauge(c.indexLoading, b2f(counts.Loading))
		n := 0
		for _, m := range counts.PerMinute[len(counts.PerMinute)-5:] {
			n += m
		}
		gauge(c.delivered5m, float64(n))
	}
	gauge(c.ready, b2f(s.Ready(ctx).Ready))
	if s.Stages != nil {
		for _, st := range s.Stages.Stages() {
			gauge(c.stageUp, b2f(!st.Down()), st.Name)
			ch <- prometheus.MustNewConstMetric(c.stageRestarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
		}
	}

	up := c.collectJetStream(ctx, ch, gauge, now)
	gauge(c.jsUp, b2f(up))
	if used, limit, err := s.Queue.StoreUsage(ctx); err == nil {
		gauge(c.storeUsed, float64(used))
		gauge(c.storeLimit, float64(limit))
	}
	if free, total, ok := s.Queue.DiskSpace(); ok {
		gauge(c.diskFree, float64(free))
		gauge(c.diskTotal, float64(total))
	}
}

// collectJetStream reports every stream and its consumers, and the outbox gauges (depth, age
// of the oldest undelivered event) docs/api.md lists under "Metrics". It returns false when
// JetStream could not be read.
func (c *collector) collectJetStream(ctx context.Context, ch chan<- prometheus.Metric, gauge func(*prometheus.Desc, float64, ...string), now time.Time) bool {
	js := c.s.Queue.JetStream()
	if js == nil {
		return false
	}
	lister := js.ListStreams(ctx)
	sawOutbox := false
	for si := range lister.Info() {
		name := si.Config.Name
		st := si.State
		gauge(c.streamMsgs, float64(st.Msgs), name)
		gauge(c.streamBytes, float64(st.Bytes), name)
		gauge(c.streamMaxBytes, float64(si.Config.MaxBytes), name)
		gauge(c.streamConsumers, float64(st.Consumers), name)
		age := 0.0
		if st.Msgs > 0 && !st.FirstTime.IsZero() {
			age = max(0, now.Sub(st.FirstTime).Seconds())
		}
		gauge(c.streamFirstAge, age, name)
		if name == queue.OutboxStream {
			sawOutbox = true
			gauge(c.outboxDepth, float64(st.Msgs))
			gauge(c.outboxAge, age)
		}
		if st.Consumers == 0 {
			continue
		}
		stream, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		cl := stream.ListConsumers(ctx)
		for ci := range cl.Info() {
			gauge(c.consPending, float64(ci.NumPending), name, ci.Name)
			gauge(c.consAckPending, float64(ci.NumAckPending), name, ci.Name)
			gauge(c.consRedelivered, float64(ci.NumRedelivered), name, ci.Name)
			gauge(c.consWaiting, float64(ci.NumWaiting), name, ci.Name)
		}
	}
	if err := lister.Err(); err != nil {
		c.s.Log.Debug().Err(err).Msg("metrics: listing streams")
		return false
	}
	return sawOutbox
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ prometheus.Collector = (*collector)(nil)
