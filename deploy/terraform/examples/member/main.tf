# One workload account: apply per account (or roll out as a StackSet-like loop over accounts).
provider "aws" {
  region = "eu-west-1"
  assume_role {
    role_arn = "arn:aws:iam::444455556666:role/OrganizationAccountAccessRole"
  }
}

module "opsbot_member" {
  source = "../../member"

  central_event_bus_arn = "arn:aws:events:eu-west-1:111122223333:event-bus/opsbot"
  opsbot_task_role_arn  = "arn:aws:iam::111122223333:role/opsbot-task"
  opsbot_url            = "https://opsbot.example.com"
}

output "runbook_role_arn" {
  description = "The account's role_arn in opsbot's YAML accounts: map."
  value       = module.opsbot_member.runbook_role_arn
}

output "alarm_topic_arn" {
  description = "Alarm action for CloudWatch alarms; add to the central module's member_topic_arns."
  value       = module.opsbot_member.alarm_topic_arn
}
