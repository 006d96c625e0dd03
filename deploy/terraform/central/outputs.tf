output "url" {
  description = "opsbot's public base URL (Slack, Jira and SNS call it)."
  value       = trimsuffix(var.public_url, "/")
}

output "alb_dns_name" {
  description = "DNS name of the ALB: point the host of public_url at it (CNAME or alias)."
  value       = aws_lb.opsbot.dns_name
}

output "alarm_topic_arn" {
  description = "SNS topic for CloudWatch alarm actions (member accounts' alarms publish here)."
  value       = aws_sns_topic.opsbot["alarms"].arn
}

output "event_topic_arn" {
  description = "SNS topic that receives the events from the bus."
  value       = aws_sns_topic.opsbot["events"].arn
}

output "event_bus_arn" {
  description = "EventBridge bus that member accounts forward their events to."
  value       = aws_cloudwatch_event_bus.opsbot.arn
}

output "queue_url" {
  description = "SQS queue subscribed to both topics (opsbot worker --sqs)."
  value       = aws_sqs_queue.intake.url
}

output "dead_letter_queue_url" {
  description = "Where messages the worker could not process after five receives end up."
  value       = aws_sqs_queue.dead_letters.url
}

output "task_role_arn" {
  description = "The role opsbot runs as: the member module's runbook role trusts it."
  value       = aws_iam_role.task.arn
}

output "cluster_name" {
  description = "ECS cluster of the web, worker and migration tasks."
  value       = aws_ecs_cluster.opsbot.name
}

output "migration_task_definition_arn" {
  description = "Run once per release before the services: aws ecs run-task --task-definition <this>."
  value       = aws_ecs_task_definition.opsbot["migrate"].arn
}

output "task_subnet_ids" {
  description = "Subnets for running the migration task."
  value       = var.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group for running the migration task."
  value       = aws_security_group.tasks.id
}

output "secret_arns" {
  description = "Secrets Manager secret of each OPSBOT_* secret setting (empty until you put a value)."
  value       = { for name, secret in aws_secretsmanager_secret.setting : name => secret.arn }
}

output "database_endpoint" {
  description = "Aurora writer endpoint for OPSBOT_DATABASE_URL."
  value       = aws_rds_cluster.opsbot.endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret holding the database master password (managed by RDS)."
  value       = aws_rds_cluster.opsbot.master_user_secret[0].secret_arn
}
