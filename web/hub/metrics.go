package hub

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the hub's counters for /metrics.
func (h *Hub) Collector() prometheus.Collector { return collector{h} }

type collector struct{ h *Hub }

var (
	descConns = prometheus.NewDesc("agentdesk_ws_connections", "Open websocket connections.", nil, nil)
	descCount = map[string]*prometheus.Desc{
		"slow_closed": prometheus.NewDesc("agentdesk_ws_slow_closed_total", "Connections closed for not reading fast enough (4008).", nil, nil),
		"resyncs":     prometheus.NewDesc("agentdesk_ws_resyncs_total", "Resync instructions sent.", nil, nil),
		"events":      prometheus.NewDesc("agentdesk_ws_events_sent_total", "Stream event frames queued to clients.", nil, nil),
		"reads":       prometheus.NewDesc("agentdesk_ws_stream_reads_total", "Batched stream reads from the database.", nil, nil),
		"feed":        prometheus.NewDesc("agentdesk_ws_feed_wakes_total", "Streams woken by the change feed.", nil, nil),
		"poll":        prometheus.NewDesc("agentdesk_ws_poll_wakes_total", "Streams woken by the full poll (the feed had not woken them yet).", nil, nil),
		"errors":      prometheus.NewDesc("agentdesk_ws_error_frames_total", "Error frames sent in reply to client messages.", nil, nil),
	}
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConns
	for _, d := range descCount {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.h.stats
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Connections.Load()))
	for name, v := range map[string]int64{
		"slow_closed": s.SlowClosed.Load(), "resyncs": s.Resyncs.Load(), "events": s.EventsSent.Load(),
		"reads": s.Fetches.Load(), "feed": s.FeedWakes.Load(), "poll": s.PollWakes.Load(), "errors": s.ErrorsReturned.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(descCount[name], prometheus.CounterValue, float64(v))
	}
}
