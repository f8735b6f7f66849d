# Security groups: exactly the traffic the system needs.
#
#   clients (app_ingress_cidrs) -> members:8080    the app, through the NLB
#   NLB health checks           -> members:8080    GET /health
#   monitoring                  -> members:8080    app /metrics, POST /drain
#   monitoring                  -> members:9100    node exporter
#   operator_cidr               -> monitoring:9090 Prometheus
#   operator_cidr               -> monitoring:3000 Grafana
#   operator_cidr               -> all:22          only with ssh_key_name
#
# Why clients reach the members directly: an Exoscale NLB forwards packets
# without rewriting their source, so a member sees the client's address, not
# the NLB's, and there is no "NLB" source to allow. The app port must
# therefore admit the clients themselves (by default the whole Internet, which
# is the point of a public load balancer). The NLB's own health checks come
# from addresses Exoscale publishes as the managed security group
# public-nlb-healthcheck-sources; they are admitted on their own so that
# narrowing app_ingress_cidrs never takes members out of rotation.
#
# Egress is unrestricted (Exoscale's default with no EGRESS rule): instances
# download packages and the tidepool release, and the agents call the API.

resource "exoscale_security_group" "members" {
  name        = "${var.name_prefix}-members"
  description = "tidepool instance pool members: app (8080) and node exporter (9100)."
}

resource "exoscale_security_group" "monitoring" {
  name        = "${var.name_prefix}-monitoring"
  description = "tidepool monitoring: Prometheus (9090) and Grafana (3000) for the operator."
}

resource "exoscale_security_group_rule" "members_app_clients" {
  for_each = toset(var.app_ingress_cidrs)

  security_group_id = exoscale_security_group.members.id
  description       = "App from clients through the NLB (client addresses are preserved)"
  type              = "INGRESS"
  protocol          = "TCP"
  cidr              = each.value
  start_port        = local.app_port
  end_port          = local.app_port
}

resource "exoscale_security_group_rule" "members_app_healthcheck" {
  security_group_id     = exoscale_security_group.members.id
  description           = "NLB health checks (GET /health)"
  type                  = "INGRESS"
  protocol              = "TCP"
  public_security_group = "public-nlb-healthcheck-sources"
  start_port            = local.app_port
  end_port              = local.app_port
}

resource "exoscale_security_group_rule" "members_from_monitoring" {
  for_each = {
    app           = local.app_port
    node_exporter = local.node_exporter_port
  }

  security_group_id      = exoscale_security_group.members.id
  description            = "Monitoring instance: ${each.key} scrape (and POST /drain on the app)"
  type                   = "INGRESS"
  protocol               = "TCP"
  user_security_group_id = exoscale_security_group.monitoring.id
  start_port             = each.value
  end_port               = each.value
}

resource "exoscale_security_group_rule" "monitoring_from_operator" {
  for_each = {
    prometheus = local.prometheus_port
    grafana    = local.grafana_port
  }

  security_group_id = exoscale_security_group.monitoring.id
  description       = "Operator: ${each.key}"
  type              = "INGRESS"
  protocol          = "TCP"
  cidr              = var.operator_cidr
  start_port        = each.value
  end_port          = each.value
}

resource "exoscale_security_group_rule" "ssh_from_operator" {
  for_each = var.ssh_key_name == null ? {} : {
    members    = exoscale_security_group.members.id
    monitoring = exoscale_security_group.monitoring.id
  }

  security_group_id = each.value
  description       = "Operator: SSH"
  type              = "INGRESS"
  protocol          = "TCP"
  cidr              = var.operator_cidr
  start_port        = 22
  end_port          = 22
}
