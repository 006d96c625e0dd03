data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  tags      = merge({ "app" = "opsbot" }, var.tags)
  # The EventBridge sources and detail-types opsbot's handlers read (handlers/sources.py).
  event_sources = {
    guardduty   = { source = ["aws.guardduty"], detail_type = ["GuardDuty Finding"] }
    securityhub = { source = ["aws.securityhub"], detail_type = ["Security Hub Findings - Imported"] }
    inspector   = { source = ["aws.inspector2"], detail_type = ["Inspector2 Finding"] }
    health      = { source = ["aws.health"], detail_type = ["AWS Health Event"] }
    config      = { source = ["aws.config"], detail_type = ["Config Rules Compliance Change"] }
    ecs         = { source = ["aws.ecs"], detail_type = ["ECS Task State Change", "ECS Deployment State Change"] }
    codepipeline = {
      source = ["aws.codepipeline"]
      detail_type = [
        "CodePipeline Pipeline Execution State Change",
        "CodePipeline Stage Execution State Change",
        "CodePipeline Action Execution State Change",
      ]
    }
    ec2 = { source = ["aws.ec2"], detail_type = ["EC2 Instance State-change Notification"] }
    # Cost Anomaly Detection publishes in the account that owns the monitor (usually the payer).
    cost = { source = ["aws.ce"], detail_type = ["Anomaly Detected"] }
    rds = { source = ["aws.rds"], detail_type = ["RDS DB Instance Event", "RDS DB Cluster Event"] }
    acm = {
      source      = ["aws.acm"]
      detail_type = ["ACM Certificate Approaching Expiration", "ACM Certificate Expired"]
    }
    ssm = {
      source = ["aws.ssm"]
      detail_type = [
        "EC2 Command Status-change Notification",
        "EC2 Automation Execution Status-change Notification",
        "Configuration Compliance State Change",
      ]
    }
  }
  cloudtrail_sources = ["aws.ec2", "aws.iam", "aws.s3", "aws.kms", "aws.cloudtrail", "aws.signin", "aws.sts"]
}

# -- events: the handled sources go to the central bus ----------------------------------------

resource "aws_cloudwatch_event_rule" "source" {
  for_each      = local.event_sources
  name          = "${var.name}-${each.key}"
  description   = "opsbot: ${join(", ", each.value.detail_type)}"
  event_pattern = jsonencode({ source = each.value.source, "detail-type" = each.value.detail_type })
  tags          = local.tags
}

resource "aws_cloudwatch_event_rule" "cloudtrail" {
  name        = "${var.name}-cloudtrail-watch-list"
  description = "opsbot: the CloudTrail calls on its watch list"
  event_pattern = jsonencode({
    source        = local.cloudtrail_sources
    "detail-type" = ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail"]
    detail        = { eventName = var.cloudtrail_event_names }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "source" {
  for_each = merge(aws_cloudwatch_event_rule.source, { cloudtrail = aws_cloudwatch_event_rule.cloudtrail })
  rule     = each.value.name
  arn      = var.central_event_bus_arn
  role_arn = aws_iam_role.forward.arn
}

data "aws_iam_policy_document" "events_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "forward" {
  name               = "${var.name}-forward-events"
  assume_role_policy = data.aws_iam_policy_document.events_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "forward" {
  statement {
    actions   = ["events:PutEvents"]
    resources = [var.central_event_bus_arn]
  }
}

resource "aws_iam_role_policy" "forward" {
  name   = "put-on-central-bus"
  role   = aws_iam_role.forward.id
  policy = data.aws_iam_policy_document.forward.json
}

# -- the CloudWatch alarm action topic -----------------------------------------------------------

resource "aws_kms_key" "alarms" {
  description         = "${var.name}: the alarm action topic"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.alarm_key.json
  tags                = local.tags
}

data "aws_iam_policy_document" "alarm_key" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is this key alone; the account root administers it as AWS's default key policy does.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is this key alone.
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is this key alone; the account root administers it as AWS's default key policy does.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchPublishesEncrypted"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]
    }
  }
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "alarm_topic" {
  statement {
    sid       = "CloudWatchPublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarm_topic.json
}

resource "aws_sns_topic_subscription" "alarms" {
  topic_arn              = aws_sns_topic.alarms.arn
  protocol               = "https"
  endpoint               = "${trimsuffix(var.opsbot_url, "/")}/sns"
  # opsbot confirms subscriptions of allowed topics itself once it runs (after the secrets
  # are set): Terraform must not wait for that. pending_confirmation shows where it stands.
  endpoint_auto_confirms = false
}
