data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# The task role: what opsbot itself may do (pull the queue, assume the member runbook roles).
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "PullTheIntakeQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.intake.arn]
  }
  statement {
    sid       = "ReadEncryptedMessages"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.opsbot.arn]
  }
  dynamic "statement" {
    for_each = length(var.member_account_ids) > 0 ? [1] : []
    content {
      sid       = "AssumeTheRunbookRoles"
      actions   = ["sts:AssumeRole"]
      resources = [for id in var.member_account_ids : "arn:${local.partition}:iam::${id}:role/${var.member_role_name}"]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "opsbot"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# The execution role: what ECS needs to start the task (image, logs, secrets).
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "InjectTheSettings"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for secret in aws_secretsmanager_secret.setting : secret.arn]
  }
  dynamic "statement" {
    for_each = length(var.parameter_arns) > 0 ? [1] : []
    content {
      sid       = "InjectTheParameters"
      actions   = ["ssm:GetParameters"]
      resources = values(var.parameter_arns)
    }
  }
  statement {
    sid       = "DecryptTheSettings"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.opsbot.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "opsbot-settings"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "monitoring_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_trust.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
