# Empty secrets: Terraform never sees their values (nothing secret in state).
# Put each value once with `aws secretsmanager put-secret-value` (README).
resource "aws_secretsmanager_secret" "setting" {
  #checkov:skip=CKV2_AWS_57:Slack, Jira and API tokens are issued by those services; no rotation Lambda can renew them.
  for_each                = toset(var.secret_names)
  name                    = "${var.name}/${each.key}"
  description             = "opsbot setting ${each.key}"
  kms_key_id              = aws_kms_key.opsbot.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

locals {
  task_secrets = concat(
    [for name, secret in aws_secretsmanager_secret.setting : { name = name, valueFrom = secret.arn }],
    [for name, arn in var.parameter_arns : { name = name, valueFrom = arn }],
  )
}
