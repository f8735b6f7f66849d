# A restricted API key for the agents on the monitoring instance.
#
# tidepool discover reads the pool and lists its members; tidepool autoscaler
# also scales the pool, marks the member it drains (an instance label, so a
# restarted autoscaler finishes the drain), evicts it, reads the NLB
# service's health and waits on the resulting operations. The role
# allows exactly those API operations and denies everything else (a request
# matching no rule is refused whatever the default strategy). A leaked agent
# key can therefore resize or shrink instance pools and relabel instances, but
# not create or delete instances, read other services or touch IAM.
#
# The list must stay equal to the Exoscale calls the agents make:
# internal/deploytest checks it against the consumer interfaces
# discover.Client and autoscaler.Cloud.

locals {
  agent_operations = [
    "evict-instance-pool-members",
    "get-instance",
    "get-instance-pool",
    "get-load-balancer-service",
    "get-operation",
    "list-instance-pools",
    "list-instances",
    "scale-instance-pool",
    "update-instance",
  ]
}

resource "exoscale_iam_role" "agents" {
  count = var.create_agent_api_key ? 1 : 0

  name        = "${var.name_prefix}-agents"
  description = "tidepool discover and autoscaler: read the instance pool, its members and the NLB service; scale the pool, label and evict members."
  editable    = true

  policy = {
    default_service_strategy = "deny"
    services = {
      compute = {
        type = "rules"
        rules = [
          {
            action     = "allow"
            expression = "operation in [${join(", ", [for op in local.agent_operations : "'${op}'"])}]"
          },
        ]
      }
    }
  }
}

resource "exoscale_iam_api_key" "agents" {
  count = var.create_agent_api_key ? 1 : 0

  name    = "${var.name_prefix}-agents"
  role_id = exoscale_iam_role.agents[0].id
}

locals {
  # The credentials written to /etc/tidepool/exoscale.env on the monitoring
  # instance. Both values are sensitive; they reach the instance only through
  # its user data.
  agent_key    = var.create_agent_api_key ? exoscale_iam_api_key.agents[0].key : var.exoscale_key
  agent_secret = var.create_agent_api_key ? exoscale_iam_api_key.agents[0].secret : var.exoscale_secret
}
