variable "name" {
  description = "Prefix of every resource name (topics, queue, cluster, services, roles)."
  type        = string
  default     = "opsbot"
}

variable "image" {
  description = "The opsbot container image (built from the repository's Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/opsbot:0.1.0."
  type        = string
}

variable "public_url" {
  description = "The HTTPS base URL at which the ALB answers (DNS name on the certificate), e.g. https://opsbot.example.com. SNS posts to <public_url>/sns."
  type        = string
  validation {
    condition     = startswith(var.public_url, "https://")
    error_message = "public_url must be an https:// URL: SNS, Slack and Jira call it."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the ALB's HTTPS listener (covers the host in public_url)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the ALB, the ECS services and the Aurora cluster."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing ALB (at least two availability zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the ECS tasks and the Aurora cluster (no public IPs; need a NAT or VPC endpoints to reach AWS, Slack and Jira)."
  type        = list(string)
}

variable "ingress_cidrs" {
  description = "CIDR blocks allowed to reach the ALB on 443. SNS, Slack and Jira Cloud call from the internet, so the default is everyone."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "member_account_ids" {
  description = "Workload accounts that may publish to the topics and put events on the bus, and whose opsbot role the task may assume."
  type        = list(string)
  default     = []
}

variable "member_topic_arns" {
  description = "The member modules' alarm_topic_arn outputs: topics opsbot accepts besides its own (OPSBOT_SNS_TOPIC_ARNS)."
  type        = list(string)
  default     = []
}

variable "member_role_name" {
  description = "Name of the runbook role the member module creates in every workload account."
  type        = string
  default     = "opsbot-runbooks"
}

variable "environment" {
  description = "Plain (non-secret) OPSBOT_* settings for every task, e.g. { OPSBOT_SLACK_CHANNEL = \"#ops\" }."
  type        = map(string)
  default     = {}
}

variable "secret_names" {
  description = "OPSBOT_* settings injected from Secrets Manager. Terraform creates each secret empty (nothing secret in state); you put the values."
  type        = list(string)
  default = [
    "OPSBOT_DATABASE_URL",
    "OPSBOT_API_TOKEN",
    "OPSBOT_SLACK_BOT_TOKEN",
    "OPSBOT_SLACK_SIGNING_SECRET",
    "OPSBOT_JIRA_TOKEN",
    "OPSBOT_JIRA_WEBHOOK_SECRET",
  ]
}

variable "parameter_arns" {
  description = "Extra OPSBOT_* settings from existing SSM Parameter Store parameters: setting name to parameter ARN."
  type        = map(string)
  default     = {}
}

variable "web_count" {
  description = "Number of web tasks (opsbot serve) behind the ALB."
  type        = number
  default     = 2
}

variable "worker_count" {
  description = "Number of worker tasks (opsbot worker: outbox, scheduler, SQS pull)."
  type        = number
  default     = 1
}

variable "task_cpu" {
  description = "Fargate CPU units of each task."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory (MiB) of each task."
  type        = number
  default     = 1024
}

variable "db_min_capacity" {
  description = "Aurora Serverless v2 minimum capacity (ACUs)."
  type        = number
  default     = 0.5
}

variable "db_max_capacity" {
  description = "Aurora Serverless v2 maximum capacity (ACUs)."
  type        = number
  default     = 4
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups, in days."
  type        = number
  default     = 365
}

variable "access_logs_bucket" {
  description = "Existing S3 bucket for the ALB's access logs (its policy must allow the ELB log delivery)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
