# The operations account: apply once. Fill in the network, the certificate and the image.
provider "aws" {
  region = "eu-west-1"
}

module "opsbot" {
  source = "../../central"

  image              = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/opsbot:0.1.0"
  public_url         = "https://opsbot.example.com"
  certificate_arn    = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
  vpc_id             = "vpc-0123456789abcdef0"
  public_subnet_ids  = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  private_subnet_ids = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
  access_logs_bucket = "example-alb-access-logs"
  member_account_ids = ["444455556666", "777788889999"]
  member_topic_arns = [
    "arn:aws:sns:eu-west-1:444455556666:opsbot-alarms",
    "arn:aws:sns:eu-west-1:777788889999:opsbot-alarms",
  ]
  environment = {
    OPSBOT_SLACK_CHANNEL = "#ops-alerts"
    OPSBOT_JIRA_URL      = "https://example.atlassian.net"
    OPSBOT_JIRA_USER     = "opsbot@example.com"
    OPSBOT_JIRA_PROJECT  = "OPS"
  }
}

output "opsbot" {
  description = "Everything the member accounts, the README's checks and the Slack app need."
  value = {
    url                           = module.opsbot.url
    alb_dns_name                  = module.opsbot.alb_dns_name
    event_bus_arn                 = module.opsbot.event_bus_arn
    task_role_arn                 = module.opsbot.task_role_arn
    cluster_name                  = module.opsbot.cluster_name
    migration_task_definition_arn = module.opsbot.migration_task_definition_arn
    secret_arns                   = module.opsbot.secret_arns
  }
}
