output "runbook_role_arn" {
  description = "Put this as role_arn of the account in opsbot's YAML accounts: map."
  value       = aws_iam_role.runbooks.arn
}

output "alarm_topic_arn" {
  description = "Use as the alarm action of CloudWatch alarms; add it to the central module's member_topic_arns (OPSBOT_SNS_TOPIC_ARNS)."
  value       = aws_sns_topic.alarms.arn
}

output "event_rule_names" {
  description = "The EventBridge rules forwarding this account's events to the central bus."
  value       = concat([for rule in aws_cloudwatch_event_rule.source : rule.name], [aws_cloudwatch_event_rule.cloudtrail.name])
}
