# The role opsbot's runbooks assume in this account: trusted by opsbot's task
# role only, allowed to run exactly the catalogue's SSM documents, only on
# instances carrying the opsbot tag, plus the read-only calls the runs poll with.

data "aws_iam_policy_document" "runbooks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.opsbot_task_role_arn]
    }
    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "runbooks" {
  name                 = "${var.name}-runbooks"
  description          = "Assumed by opsbot to run the runbook catalogue's SSM documents"
  assume_role_policy   = data.aws_iam_policy_document.runbooks_trust.json
  max_session_duration = 3600
  tags                 = local.tags
}

locals {
  tag_condition = "ssm:resourceTag/${var.instance_tag_key}"
  # AWS-owned documents have no account in their ARN; the account's own documents do.
  command_document_arns = [
    for doc in var.command_documents :
    startswith(doc, "AWS-") ? "arn:${local.partition}:ssm:*::document/${doc}" : "arn:${local.partition}:ssm:*:${local.account}:document/${doc}"
  ]
  automation_definition_arns = [
    for doc in var.automation_documents :
    "arn:${local.partition}:ssm:*:${startswith(doc, "AWS-") ? "" : local.account}:automation-definition/${doc}:*"
  ]
}

data "aws_iam_policy_document" "runbooks" {
  statement {
    sid       = "SendTheCatalogueCommands"
    actions   = ["ssm:SendCommand"]
    resources = local.command_document_arns
  }
  statement {
    sid     = "OnTaggedInstancesOnly"
    actions = ["ssm:SendCommand"]
    resources = [
      "arn:${local.partition}:ec2:*:${local.account}:instance/*",
      "arn:${local.partition}:ssm:*:${local.account}:managed-instance/*",
    ]
    condition {
      test     = "StringEquals"
      variable = local.tag_condition
      values   = var.instance_tag_values
    }
  }
  statement {
    sid       = "StartTheCatalogueAutomations"
    actions   = ["ssm:StartAutomationExecution"]
    resources = local.automation_definition_arns
  }
  statement {
    sid       = "FollowAndStopTheirExecutions"
    actions   = ["ssm:GetAutomationExecution", "ssm:StopAutomationExecution"]
    resources = ["arn:${local.partition}:ssm:*:${local.account}:automation-execution/*"]
  }
  statement {
    sid = "ReadOnlyAndCancel"
    actions = [
      "ssm:CancelCommand", # opsbot cancels only the commands it sent; the call takes no resource
      "ssm:DescribeInstanceInformation",
      "ssm:GetCommandInvocation",
      "ssm:ListCommandInvocations",
      "ssm:ListCommands",
      "ec2:DescribeInstances",
    ]
    resources = ["*"] # these calls take no resource-level permissions
  }
  statement {
    sid     = "ReadPatchStatesAndServices"
    actions = ["ssm:DescribeInstancePatchStates", "ecs:DescribeServices"]
    resources = [
      "arn:${local.partition}:ec2:*:${local.account}:instance/*",
      "arn:${local.partition}:ssm:*:${local.account}:managed-instance/*",
      "arn:${local.partition}:ecs:*:${local.account}:service/*",
    ]
  }
  # CodePipeline manual approvals decided from Slack (opsbot/approvals/pipelines.py).
  statement {
    sid = "DecidePipelineApprovals"
    actions = [
      "codepipeline:GetPipelineState",
      "codepipeline:GetPipelineExecution",
      "codepipeline:PutApprovalResult",
    ]
    resources = ["arn:${local.partition}:codepipeline:*:${local.account}:*"]
  }
  # Automation without an assume role runs its steps as the caller: the steps of
  # AWS-RestartEC2Instance and Opsbot-RestartEcsService, on tagged resources only.
  statement {
    sid       = "RestartTaggedInstances"
    actions   = ["ec2:StopInstances", "ec2:StartInstances"]
    resources = ["arn:${local.partition}:ec2:*:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.instance_tag_key}"
      values   = var.instance_tag_values
    }
  }
  statement {
    sid       = "RestartTaggedServices"
    actions   = ["ecs:UpdateService"]
    resources = ["arn:${local.partition}:ecs:*:${local.account}:service/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.instance_tag_key}"
      values   = var.instance_tag_values
    }
  }
}

resource "aws_iam_role_policy" "runbooks" {
  name   = "opsbot-runbooks"
  role   = aws_iam_role.runbooks.id
  policy = data.aws_iam_policy_document.runbooks.json
}

# The one custom document of the catalogue (runbooks/restart-ecs-service.yaml).
resource "aws_ssm_document" "restart_ecs_service" {
  name            = "Opsbot-RestartEcsService"
  document_type   = "Automation"
  document_format = "YAML"
  content         = <<-DOC
    schemaVersion: "0.3"
    description: Force a new deployment of an ECS service (opsbot runbook restart-ecs-service).
    parameters:
      Cluster:
        type: String
        allowedPattern: "^[A-Za-z0-9_-]{1,255}$"
      Service:
        type: String
        allowedPattern: "^[A-Za-z0-9_-]{1,255}$"
    mainSteps:
      - name: forceNewDeployment
        action: aws:executeAwsApi
        inputs:
          Service: ecs
          Api: UpdateService
          cluster: "{{ Cluster }}"
          service: "{{ Service }}"
          forceNewDeployment: true
  DOC
  tags            = local.tags
}
