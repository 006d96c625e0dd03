variable "name" {
  description = "Prefix of every resource name; the runbook role is named <name>-runbooks."
  type        = string
  default     = "opsbot"
}

variable "central_event_bus_arn" {
  description = "The central module's event_bus_arn output: where this account's events go."
  type        = string
}

variable "opsbot_task_role_arn" {
  description = "The central module's task_role_arn output: the only principal the runbook role trusts."
  type        = string
}

variable "opsbot_url" {
  description = "The central module's url output; the alarm topic posts to <opsbot_url>/sns."
  type        = string
  validation {
    condition     = startswith(var.opsbot_url, "https://")
    error_message = "opsbot_url must be an https:// URL."
  }
}

variable "external_id" {
  description = "External id the runbook role requires (sts:ExternalId). Null: trust the task role alone, as opsbot does not send an external id yet."
  type        = string
  default     = null
}

variable "instance_tag_key" {
  description = "Tag key an instance must carry for opsbot's runbooks to touch it."
  type        = string
  default     = "opsbot-runbooks"
}

variable "instance_tag_values" {
  description = "Values of instance_tag_key that allow runbooks on an instance."
  type        = list(string)
  default     = ["enabled"]
}

variable "command_documents" {
  description = "SSM Run Command documents the runbook catalogue (runbooks/*.yaml, kind: command) uses."
  type        = list(string)
  default     = ["AWS-RunPatchBaseline", "AWS-RunShellScript"]
}

variable "automation_documents" {
  description = "SSM Automation documents the runbook catalogue (runbooks/*.yaml, kind: automation) uses."
  type        = list(string)
  default     = ["AWS-RestartEC2Instance", "Opsbot-RestartEcsService"]
}

variable "cloudtrail_event_names" {
  description = "CloudTrail API calls forwarded to opsbot (its default watch list; extend with the YAML cloudtrail: key)."
  type        = list(string)
  default = [
    "AddUserToGroup", "AttachGroupPolicy", "AttachRolePolicy", "AttachUserPolicy",
    "AuthorizeSecurityGroupIngress", "ConsoleLogin", "CreateAccessKey", "CreateLoginProfile",
    "CreatePolicy", "CreatePolicyVersion", "CreateUser", "DeleteBucketPublicAccessBlock",
    "DeletePolicy", "DeleteTrail", "DeleteUser", "DisableKey", "PutBucketAcl", "PutBucketPolicy",
    "PutBucketPublicAccessBlock", "PutGroupPolicy", "PutRolePolicy", "PutUserPolicy",
    "ScheduleKeyDeletion", "SetDefaultPolicyVersion", "StopLogging", "UpdateAssumeRolePolicy",
    "UpdateLoginProfile",
  ]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
