package cloud

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	poolSizeDesc = prometheus.NewDesc("tidepool_cloud_instance_pool_size",
		"Requested size of an instance pool.", []string{"pool_id", "pool_name"}, nil)
	poolInstancesDesc = prometheus.NewDesc("tidepool_cloud_instance_pool_instances",
		"Members of an instance pool by instance state (leaving members included).", []string{"pool_id", "pool_name", "state"}, nil)
)

// instanceStates are the states reported by tidepool_cloud_instance_pool_instances
// (every one, zeros included, so that series do not vanish).
var instanceStates = []string{stateStarting, stateRunning, stateStopping, stateDestroying, stateError, stateStopped}

var _ prometheus.Collector = (*Cloud)(nil)

// Describe implements prometheus.Collector. The Cloud is an unchecked
// collector: the load balancer series come and go with the services.
func (c *Cloud) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: pool sizes, members by state, and
// the series of every bound load balancer service (tidepool_nlb_*, labelled
// service=<service id>).
func (c *Cloud) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	var balancers []balancer
	for _, p := range c.sortedPools() {
		if p.deleting {
			continue
		}
		ch <- prometheus.MustNewConstMetric(poolSizeDesc, prometheus.GaugeValue, float64(p.rec.Size), p.rec.ID, p.rec.Name)
		count := map[string]int{}
		for _, m := range c.membersLocked(p.rec.ID) {
			count[m.state]++
		}
		for _, st := range instanceStates {
			ch <- prometheus.MustNewConstMetric(poolInstancesDesc, prometheus.GaugeValue, float64(count[st]), p.rec.ID, p.rec.Name, st)
		}
	}
	for _, lb := range c.nlbs {
		for _, s := range lb.services {
			if s.lb != nil {
				balancers = append(balancers, s.lb)
			}
		}
	}
	c.mu.Unlock()
	for _, b := range balancers {
		b.Collect(ch)
	}
}
