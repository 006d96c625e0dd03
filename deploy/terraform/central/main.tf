data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  tags      = merge({ "app" = "opsbot" }, var.tags)
  web_port  = 8080
  # The worker's own listener (OPSBOT_WORKER_PORT), for its ECS health check.
  worker_port = 9102
  publishers  = [for id in var.member_account_ids : "arn:${local.partition}:iam::${id}:root"]
}

# One customer-managed key for topics, queues, logs, secrets and the database.
resource "aws_kms_key" "opsbot" {
  description         = "${var.name}: topics, queues, logs, secrets and database"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json
  tags                = local.tags
}

resource "aws_kms_alias" "opsbot" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.opsbot.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is this key alone; the account root administers it as AWS's default key policy does.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is this key alone.
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is this key alone; the account root administers it as AWS's default key policy does.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # a key policy's resource is always the key itself
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "ServicesPublishEncrypted"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type = "Service"
      identifiers = [
        "sns.amazonaws.com",
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "logs.${local.region}.amazonaws.com",
      ]
    }
  }
  statement {
    sid       = "MembersPublishEncrypted"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = length(local.publishers) > 0 ? local.publishers : ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
}

resource "aws_cloudwatch_log_group" "opsbot" {
  for_each          = toset(["web", "worker", "migrate", "exec"])
  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.opsbot.arn
  tags              = local.tags
}
