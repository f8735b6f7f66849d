# Credentials. Set them in the environment (TF_VAR_exoscale_key,
# TF_VAR_exoscale_secret), never in a committed file. Terraform uses them to
# create the resources; the agents on the monitoring instance get a separate,
# restricted key (iam.tf).

variable "exoscale_key" {
  description = "Exoscale API key Terraform uses (EXO...). Set TF_VAR_exoscale_key; never commit it."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^EXO[A-Za-z0-9]+$", var.exoscale_key))
    error_message = "The exoscale_key must be an Exoscale API key: EXO followed by letters and digits."
  }
}

variable "exoscale_secret" {
  description = "Secret of exoscale_key. Set TF_VAR_exoscale_secret; never commit it."
  type        = string
  sensitive   = true

  validation {
    # Exoscale secrets are base64url-like. The character set also keeps the
    # value safe inside the single-quoted systemd EnvironmentFile it may be
    # written to (create_agent_api_key = false).
    condition     = can(regex("^[A-Za-z0-9_+/=-]{16,}$", var.exoscale_secret))
    error_message = "The exoscale_secret must be at least 16 characters of A-Z, a-z, 0-9, _, +, /, = or -."
  }
}

variable "zone" {
  description = "Exoscale zone for every resource."
  type        = string
  default     = "ch-gva-2"

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]{3}-[0-9]$", var.zone))
    error_message = "The zone must be an Exoscale zone name such as ch-gva-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (pool, NLB, security groups, monitoring instance, IAM role and key)."
  type        = string
  default     = "tidepool"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "The name_prefix must be 1-21 characters: a lowercase letter, then lowercase letters, digits or -."
  }
}

# The instance pool. The autoscaler keeps its size between pool_min_size and
# pool_max_size; Terraform sets it once (pool_initial_size) and then ignores it.

variable "pool_min_size" {
  description = "Smallest pool size the autoscaler scales in to (at least 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.pool_min_size >= 1 && floor(var.pool_min_size) == var.pool_min_size
    error_message = "The pool_min_size must be a whole number of at least 1."
  }
}

variable "pool_max_size" {
  description = "Largest pool size the autoscaler scales out to."
  type        = number
  default     = 5

  validation {
    condition     = var.pool_max_size >= 1 && var.pool_max_size <= 50 && floor(var.pool_max_size) == var.pool_max_size
    error_message = "The pool_max_size must be a whole number from 1 to 50."
  }
}

variable "pool_initial_size" {
  description = "Pool size at creation, between pool_min_size and pool_max_size. Later applies leave the size to the autoscaler."
  type        = number
  default     = 2

  validation {
    condition     = var.pool_initial_size >= 1 && floor(var.pool_initial_size) == var.pool_initial_size
    error_message = "The pool_initial_size must be a whole number of at least 1."
  }
}

variable "member_instance_type" {
  description = "Instance type of the pool members (family.size, see `exo compute instance-type list`)."
  type        = string
  default     = "standard.tiny"

  validation {
    condition     = can(regex("^[a-z0-9]+\\.[a-z0-9]+$", var.member_instance_type))
    error_message = "The member_instance_type must look like family.size, e.g. standard.tiny."
  }
}

variable "monitoring_instance_type" {
  description = "Instance type of the monitoring instance (Prometheus, Alertmanager, Grafana, discover, autoscaler)."
  type        = string
  default     = "standard.small"

  validation {
    condition     = can(regex("^[a-z0-9]+\\.[a-z0-9]+$", var.monitoring_instance_type))
    error_message = "The monitoring_instance_type must look like family.size, e.g. standard.small."
  }
}

variable "member_disk_size" {
  description = "Disk size of each pool member in GiB (at least 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.member_disk_size >= 10
    error_message = "The member_disk_size must be at least 10 GiB."
  }
}

variable "monitoring_disk_size" {
  description = "Disk size of the monitoring instance in GiB (Prometheus keeps its data there)."
  type        = number
  default     = 20

  validation {
    condition     = var.monitoring_disk_size >= 10
    error_message = "The monitoring_disk_size must be at least 10 GiB."
  }
}

variable "template_name" {
  description = "Exoscale public template of every instance. The cloud-init files expect Ubuntu 24.04 (apt, systemd, nftables)."
  type        = string
  default     = "Linux Ubuntu 24.04 LTS 64-bit"
}

# The tidepool release: one static linux/amd64 binary, downloaded by every
# instance at first boot and checked against tidepool_sha256.

variable "tidepool_version" {
  description = "tidepool release to install, e.g. v0.1.0. Replaces {version} in tidepool_release_url."
  type        = string

  validation {
    condition     = can(regex("^v?[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.-]+)?$", var.tidepool_version))
    error_message = "The tidepool_version must be a semantic version such as v0.1.0."
  }
}

variable "tidepool_release_url" {
  description = "HTTPS URL of the tidepool linux/amd64 binary; {version} is replaced by tidepool_version, e.g. https://github.com/OWNER/tidepool/releases/download/{version}/tidepool-linux-amd64."
  type        = string

  validation {
    # No quotes, spaces, backslashes or $: the URL is pasted into a
    # single-quoted shell string.
    condition     = can(regex("^https://[-A-Za-z0-9._~:/?#@!&()*+,;={}%]+$", var.tidepool_release_url))
    error_message = "The tidepool_release_url must be an https:// URL without quotes, spaces, backslashes or $."
  }
}

variable "tidepool_sha256" {
  description = "SHA-256 of the binary at tidepool_release_url (sha256sum output, lowercase hex). Instances refuse any other file."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.tidepool_sha256))
    error_message = "The tidepool_sha256 must be 64 lowercase hexadecimal characters."
  }
}

# Network access.

variable "operator_cidr" {
  description = "The operator's address in CIDR notation (e.g. 203.0.113.7/32): the only source allowed to Prometheus (9090), Grafana (3000) and, with ssh_key_name, SSH."
  type        = string

  validation {
    condition     = can(cidrhost(var.operator_cidr, 0)) && !endswith(var.operator_cidr, "/0")
    error_message = "The operator_cidr must be a CIDR block narrower than the whole Internet, e.g. 203.0.113.7/32."
  }
}

variable "app_ingress_cidrs" {
  description = "Client networks allowed to the app through the NLB. The NLB keeps client source addresses, so the members' security group must admit the clients themselves (see docs/terraform.md). NLB health checks are admitted separately."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.app_ingress_cidrs) > 0 && alltrue([for c in var.app_ingress_cidrs : can(cidrhost(c, 0))])
    error_message = "The app_ingress_cidrs must be a non-empty list of CIDR blocks."
  }
}

variable "ssh_key_name" {
  description = "Name of an existing Exoscale SSH key to install on every instance. Null (the default) means no key and no SSH rule."
  type        = string
  default     = null
}

variable "create_agent_api_key" {
  description = "Create a restricted IAM role and API key for tidepool discover and autoscaler (recommended). False hands them exoscale_key/exoscale_secret instead, for keys that may not manage IAM."
  type        = bool
  default     = true
}
