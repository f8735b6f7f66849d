terraform {
  # terraform_data (replace_triggered_by on the monitoring instance) needs 1.4;
  # CI formats with 1.5.7.
  required_version = ">= 1.5.0"

  required_providers {
    exoscale = {
      source = "exoscale/exoscale"
      # exoscale_iam_role/exoscale_iam_api_key without a zone, the
      # exoscale_template data source and public_security_group rules.
      version = ">= 0.62.0, < 1.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5.0, < 4.0.0"
    }
  }
}

# The operator's key is used by Terraform only. The agents on the monitoring
# instance get their own restricted key (see iam.tf), unless
# create_agent_api_key = false.
provider "exoscale" {
  key    = var.exoscale_key
  secret = var.exoscale_secret
}
