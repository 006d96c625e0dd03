# Two topics: CloudWatch alarms and EventBridge events. opsbot is subscribed
# over HTTPS (push) and the queue is subscribed too (pull with `opsbot worker
# --sqs`); opsbot records each message once, so both may run together.
resource "aws_sns_topic" "opsbot" {
  for_each          = toset(["alarms", "events"])
  name              = "${var.name}-${each.key}"
  kms_master_key_id = aws_kms_key.opsbot.arn
  delivery_policy   = jsonencode({ http = { defaultHealthyRetryPolicy = local.sns_retry, disableSubscriptionOverrides = false } })
  tags              = local.tags
}

locals {
  # SNS retries a failed HTTPS delivery for about an hour before giving up.
  sns_retry = {
    numRetries         = 50
    numNoDelayRetries  = 3
    minDelayTarget     = 5
    maxDelayTarget     = 120
    numMinDelayRetries = 5
    numMaxDelayRetries = 30
    backoffFunction    = "exponential"
  }
}

resource "aws_sns_topic_policy" "opsbot" {
  for_each = aws_sns_topic.opsbot
  arn      = each.value.arn
  policy   = data.aws_iam_policy_document.topic[each.key].json
}

data "aws_iam_policy_document" "topic" {
  for_each = toset(["alarms", "events"])
  statement {
    sid       = "AwsServicesPublish"
    actions   = ["sns:Publish"]
    resources = ["arn:${local.partition}:sns:${local.region}:${local.account}:${var.name}-${each.key}"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = concat([local.account], var.member_account_ids)
    }
  }
  dynamic "statement" {
    for_each = length(local.publishers) > 0 ? [1] : []
    content {
      sid       = "MemberAccountsPublish"
      actions   = ["sns:Publish"]
      resources = ["arn:${local.partition}:sns:${local.region}:${local.account}:${var.name}-${each.key}"]
      principals {
        type        = "AWS"
        identifiers = local.publishers
      }
    }
  }
}

resource "aws_sns_topic_subscription" "https" {
  for_each               = aws_sns_topic.opsbot
  topic_arn              = each.value.arn
  protocol               = "https"
  endpoint               = "${trimsuffix(var.public_url, "/")}/sns"
  # opsbot confirms subscriptions of allowed topics itself once it runs (after the secrets
  # are set): Terraform must not wait for that. pending_confirmation shows where it stands.
  endpoint_auto_confirms = false
  raw_message_delivery   = false
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-intake-dlq"
  kms_master_key_id         = aws_kms_key.opsbot.arn
  message_retention_seconds = 1209600
  tags                      = local.tags
}

resource "aws_sqs_queue" "intake" {
  name                       = "${var.name}-intake"
  kms_master_key_id          = aws_kms_key.opsbot.arn
  visibility_timeout_seconds = 120
  message_retention_seconds  = 345600
  redrive_policy             = jsonencode({ deadLetterTargetArn = aws_sqs_queue.dead_letters.arn, maxReceiveCount = 5 })
  tags                       = local.tags
}

resource "aws_sqs_queue_policy" "intake" {
  queue_url = aws_sqs_queue.intake.id
  policy    = data.aws_iam_policy_document.queue.json
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "TopicsSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.intake.arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for topic in aws_sns_topic.opsbot : topic.arn]
    }
  }
}

resource "aws_sns_topic_subscription" "queue" {
  for_each  = aws_sns_topic.opsbot
  topic_arn = each.value.arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.intake.arn
}

# The bus member accounts put their events on; everything on it goes to the events topic.
resource "aws_cloudwatch_event_bus" "opsbot" {
  name = var.name
  tags = local.tags
}

resource "aws_cloudwatch_event_bus_policy" "members" {
  count          = length(local.publishers) > 0 ? 1 : 0
  event_bus_name = aws_cloudwatch_event_bus.opsbot.name
  policy         = data.aws_iam_policy_document.bus.json
}

data "aws_iam_policy_document" "bus" {
  statement {
    sid       = "MemberAccountsPutEvents"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.opsbot.arn]
    principals {
      type        = "AWS"
      identifiers = local.publishers
    }
  }
}

resource "aws_cloudwatch_event_rule" "forward" {
  name           = "${var.name}-to-topic"
  description    = "Every event member accounts forward goes to the opsbot events topic."
  event_bus_name = aws_cloudwatch_event_bus.opsbot.name
  event_pattern  = jsonencode({ account = concat([local.account], var.member_account_ids) })
  tags           = local.tags
}

resource "aws_cloudwatch_event_target" "forward" {
  rule           = aws_cloudwatch_event_rule.forward.name
  event_bus_name = aws_cloudwatch_event_bus.opsbot.name
  arn            = aws_sns_topic.opsbot["events"].arn
}
