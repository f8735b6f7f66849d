package nlb

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the descriptors of the series a Service exports. Values are
// read from the members' counters at scrape time, so the data path pays only
// for atomic adds.
type metrics struct {
	total, active, dialErrors, healthy, rejected, dataPath *prometheus.Desc
	open, maxConns, refused, evicted, idled                *prometheus.Desc
}

func newMetrics(service string) *metrics {
	constLabels := prometheus.Labels{"service": service}
	backend := []string{"backend"}
	return &metrics{
		total: prometheus.NewDesc("tidepool_nlb_connections_total",
			"Client connections proxied to a backend since it joined the pool.", backend, constLabels),
		active: prometheus.NewDesc("tidepool_nlb_connections_active",
			"Client connections currently proxied to a backend.", backend, constLabels),
		dialErrors: prometheus.NewDesc("tidepool_nlb_dial_errors_total",
			"Failed connect attempts to a backend.", backend, constLabels),
		healthy: prometheus.NewDesc("tidepool_nlb_backend_healthy",
			"1 if the backend passes its health check and takes new connections, else 0.", backend, constLabels),
		rejected: prometheus.NewDesc("tidepool_nlb_rejected_connections_total",
			"Client connections closed because no healthy backend accepted them.", nil, constLabels),
		dataPath: prometheus.NewDesc("tidepool_nlb_data_path_info",
			"Always 1; the label data_path says how the service moves bytes (epoll or portable).", []string{"data_path"}, constLabels),
		open: prometheus.NewDesc("tidepool_nlb_client_connections",
			"Client connections open (connecting to a backend included).", nil, constLabels),
		maxConns: prometheus.NewDesc("tidepool_nlb_max_connections",
			"The cap on open client connections (0: none).", nil, constLabels),
		refused: prometheus.NewDesc("tidepool_nlb_refused_connections_total",
			"Client connections closed at once because the cap or the descriptor budget was reached and no connection had been idle long enough to make room.", nil, constLabels),
		evicted: prometheus.NewDesc("tidepool_nlb_evicted_connections_total",
			"Idle connections closed to make room for a new one at the cap.", nil, constLabels),
		idled: prometheus.NewDesc("tidepool_nlb_idle_timeouts_total",
			"Connections closed because nothing moved through them for the idle timeout.", nil, constLabels),
	}
}

var _ prometheus.Collector = (*Service)(nil)

// Describe implements prometheus.Collector. Series carry the const label
// service=Config.Name and, per member, the label backend=ID; members removed
// from the pool stop being reported.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.metrics.total
	ch <- s.metrics.active
	ch <- s.metrics.dialErrors
	ch <- s.metrics.healthy
	ch <- s.metrics.rejected
	ch <- s.metrics.dataPath
	ch <- s.metrics.open
	ch <- s.metrics.maxConns
	ch <- s.metrics.refused
	ch <- s.metrics.evicted
	ch <- s.metrics.idled
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		m       *member
		healthy bool
	}
	s.mu.Lock()
	rows := make([]row, 0, len(s.members))
	for _, m := range s.members {
		rows = append(rows, row{m: m, healthy: m.healthy})
	}
	s.mu.Unlock()

	mt := s.metrics
	for _, r := range rows {
		id := r.m.id
		ch <- prometheus.MustNewConstMetric(mt.total, prometheus.CounterValue, float64(r.m.total.Load()), id)
		ch <- prometheus.MustNewConstMetric(mt.active, prometheus.GaugeValue, float64(r.m.active.Load()), id)
		ch <- prometheus.MustNewConstMetric(mt.dialErrors, prometheus.CounterValue, float64(r.m.dialErrors.Load()), id)
		h := 0.0
		if r.healthy {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(mt.healthy, prometheus.GaugeValue, h, id)
	}
	ch <- prometheus.MustNewConstMetric(mt.rejected, prometheus.CounterValue, float64(s.rejected.Load()))
	ch <- prometheus.MustNewConstMetric(mt.dataPath, prometheus.GaugeValue, 1, string(s.dp.name()))
	ch <- prometheus.MustNewConstMetric(mt.open, prometheus.GaugeValue, float64(s.open.Load()))
	ch <- prometheus.MustNewConstMetric(mt.maxConns, prometheus.GaugeValue, float64(s.maxConns))
	ch <- prometheus.MustNewConstMetric(mt.refused, prometheus.CounterValue, float64(s.refused.Load()))
	ch <- prometheus.MustNewConstMetric(mt.evicted, prometheus.CounterValue, float64(s.evicted.Load()))
	ch <- prometheus.MustNewConstMetric(mt.idled, prometheus.CounterValue, float64(s.idled.Load()))
}
