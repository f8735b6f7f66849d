# Everything here is safe to print except grafana_admin_password, which is
# marked sensitive (`terraform output -raw grafana_admin_password` shows it).

output "nlb_ip" {
  description = "Public IPv4 address of the network load balancer."
  value       = exoscale_nlb.app.ip_address
}

output "app_url" {
  description = "The app behind the load balancer: the target of `tidepool load`."
  value       = "http://${exoscale_nlb.app.ip_address}${local.nlb_port == 80 ? "" : ":${local.nlb_port}"}/"
}

output "grafana_url" {
  description = "Grafana on the monitoring instance (reachable from operator_cidr only; user admin)."
  value       = "http://${exoscale_compute_instance.monitoring.public_ip_address}:${local.grafana_port}/"
}

output "prometheus_url" {
  description = "Prometheus on the monitoring instance (reachable from operator_cidr only)."
  value       = "http://${exoscale_compute_instance.monitoring.public_ip_address}:${local.prometheus_port}/"
}

output "monitoring_ip" {
  description = "Public IPv4 address of the monitoring instance (SSH as ubuntu with ssh_key_name)."
  value       = exoscale_compute_instance.monitoring.public_ip_address
}

output "instance_pool_id" {
  description = "ID of the instance pool the autoscaler scales."
  value       = exoscale_instance_pool.members.id
}

output "nlb_service_id" {
  description = "ID of the NLB service forwarding to the pool."
  value       = exoscale_nlb_service.app.id
}

output "grafana_admin_password" {
  description = "Password of Grafana's admin user."
  value       = random_password.grafana_admin.result
  sensitive   = true
}
