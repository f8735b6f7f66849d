# tidepool on Exoscale: an instance pool running `tidepool app` and the
# Prometheus node exporter behind a network load balancer, and one monitoring
# instance running Prometheus, Alertmanager, Grafana, `tidepool discover` and
# `tidepool autoscaler`. See docs/terraform.md.

locals {
  # Ports. The app and node exporter ports must match what the monitoring
  # configuration scrapes (cloud-init passes them to `tidepool monitoring
  # render`) and what `tidepool discover` writes (TARGET_PORT).
  app_port           = 8080
  nlb_port           = 80
  node_exporter_port = 9100
  prometheus_port    = 9090
  grafana_port       = 3000
  health_path        = "/health"

  tidepool_url = replace(var.tidepool_release_url, "{version}", var.tidepool_version)

  # write_files entries every instance has (release download, metadata guard),
  # spliced into both cloud-init files.
  common_files = templatefile("${path.module}/cloud-init/common-files.yaml.tftpl", {
    tidepool_url    = local.tidepool_url
    tidepool_sha256 = var.tidepool_sha256
  })

  labels = {
    app     = "tidepool"
    release = replace(var.tidepool_version, "+", "_")
  }
}

data "exoscale_template" "ubuntu" {
  zone = var.zone
  name = var.template_name
}

# A bearer token both sides of POST /drain know: the app on every member
# accepts a drain only with it (port 8080 is open to clients), the autoscaler
# sends it.
resource "random_password" "drain_token" {
  length  = 40
  special = false
}

# The bearer token of the autoscaler's webhooks (/up, /down): Alertmanager
# and Grafana send it, the autoscaler refuses requests without it.
resource "random_password" "autoscaler_token" {
  length  = 40
  special = false
}

# Grafana's admin password, set when Grafana first starts
# (`terraform output -raw grafana_admin_password`).
resource "random_password" "grafana_admin" {
  length  = 24
  special = false
}

resource "exoscale_instance_pool" "members" {
  zone               = var.zone
  name               = "${var.name_prefix}-pool"
  description        = "tidepool app members, scaled by tidepool autoscaler"
  template_id        = data.exoscale_template.ubuntu.id
  instance_type      = var.member_instance_type
  disk_size          = var.member_disk_size
  size               = var.pool_initial_size
  instance_prefix    = "${var.name_prefix}-member"
  security_group_ids = [exoscale_security_group.members.id]
  key_pair           = var.ssh_key_name
  labels             = local.labels

  user_data = templatefile("${path.module}/cloud-init/member.yaml.tftpl", {
    common_files = local.common_files
    app_port     = local.app_port
    drain_token  = random_password.drain_token.result
  })

  lifecycle {
    # The autoscaler owns the size once the pool exists: without this, every
    # apply would reset the pool to pool_initial_size.
    ignore_changes = [size]

    precondition {
      condition     = var.pool_min_size <= var.pool_initial_size && var.pool_initial_size <= var.pool_max_size
      error_message = "Pool sizes must satisfy pool_min_size <= pool_initial_size <= pool_max_size."
    }
  }
}

resource "exoscale_nlb" "app" {
  zone        = var.zone
  name        = "${var.name_prefix}-nlb"
  description = "tidepool app load balancer"
  labels      = local.labels
}

resource "exoscale_nlb_service" "app" {
  zone             = var.zone
  nlb_id           = exoscale_nlb.app.id
  name             = "${var.name_prefix}-http"
  description      = "HTTP ${local.nlb_port} to the app on ${local.app_port}"
  instance_pool_id = exoscale_instance_pool.members.id
  protocol         = "tcp"
  port             = local.nlb_port
  target_port      = local.app_port
  strategy         = "round-robin"

  # A member leaves rotation after two failed checks 5 s apart, so a drained
  # member (POST /drain makes /health answer 503) is out within about 15 s,
  # well inside the autoscaler's drain timeout, while one slow answer from a
  # CPU-saturated member does not take it out.
  healthcheck {
    mode     = "http"
    port     = local.app_port
    uri      = local.health_path
    interval = 5
    timeout  = 4
    retries  = 2
  }
}

locals {
  monitoring_user_data = templatefile("${path.module}/cloud-init/monitoring.yaml.tftpl", {
    common_files           = local.common_files
    zone                   = var.zone
    pool_id                = exoscale_instance_pool.members.id
    pool_min_size          = var.pool_min_size
    pool_max_size          = var.pool_max_size
    nlb_id                 = exoscale_nlb.app.id
    nlb_service_id         = exoscale_nlb_service.app.id
    app_port               = local.app_port
    node_exporter_port     = local.node_exporter_port
    agent_key              = local.agent_key
    agent_secret           = local.agent_secret
    drain_token            = random_password.drain_token.result
    autoscaler_token       = random_password.autoscaler_token.result
    grafana_admin_password = random_password.grafana_admin.result
  })
}

# Changing the monitoring user data (new release, new pool, rotated key)
# replaces the instance: cloud-init runs only on the first boot, so an
# in-place user data update would change nothing on it.
resource "terraform_data" "monitoring_user_data" {
  input = sha256(local.monitoring_user_data)
}

resource "exoscale_compute_instance" "monitoring" {
  zone               = var.zone
  name               = "${var.name_prefix}-monitoring"
  template_id        = data.exoscale_template.ubuntu.id
  type               = var.monitoring_instance_type
  disk_size          = var.monitoring_disk_size
  security_group_ids = [exoscale_security_group.monitoring.id]
  ssh_keys           = var.ssh_key_name == null ? null : [var.ssh_key_name]
  labels             = local.labels
  user_data          = local.monitoring_user_data

  lifecycle {
    # Exoscale republishes templates under new IDs; do not replace the
    # monitoring instance (and lose its Prometheus data) for that.
    ignore_changes       = [template_id, user_data]
    replace_triggered_by = [terraform_data.monitoring_user_data]
  }
}
