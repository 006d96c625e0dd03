resource "aws_ecs_cluster" "opsbot" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.opsbot.arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.opsbot["exec"].name
      }
    }
  }
  tags = local.tags
}

locals {
  base_environment = merge({
    OPSBOT_SNS_TOPIC_ARNS = join(",", concat([for topic in aws_sns_topic.opsbot : topic.arn], var.member_topic_arns))
    OPSBOT_SQS_QUEUE_URLS = aws_sqs_queue.intake.url
    AWS_REGION            = local.region
  }, var.environment)
  roles = {
    web = {
      command = ["opsbot", "serve", "--host", "0.0.0.0", "--port", tostring(local.web_port)]
      port    = local.web_port
      extra   = {}
      check   = "http://127.0.0.1:${local.web_port}/healthz"
    }
    worker = {
      command = ["opsbot", "worker"]
      port    = local.worker_port
      # The worker's listener: reachable by the health check and a scraper in the VPC.
      extra = { OPSBOT_WORKER_HOST = "0.0.0.0", OPSBOT_WORKER_PORT = tostring(local.worker_port) }
      check = "http://127.0.0.1:${local.worker_port}/healthz"
    }
    migrate = {
      command = ["opsbot", "db", "upgrade"]
      port    = null
      extra   = {}
      check   = null
    }
  }
}

resource "aws_ecs_task_definition" "opsbot" {
  for_each                 = local.roles
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  # The root filesystem is read-only; opsbot writes its data dir (pinned SNS certificates) and /tmp here.
  volume {
    name = "data"
  }
  volume {
    name = "tmp"
  }
  container_definitions = jsonencode([merge({
    name                   = "opsbot"
    image                  = var.image
    command                = each.value.command
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    portMappings           = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
    environment            = [for k, v in merge(local.base_environment, each.value.extra) : { name = k, value = v }]
    secrets                = local.task_secrets
    mountPoints = [
      { sourceVolume = "data", containerPath = "/var/lib/opsbot", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.opsbot[each.key].name
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
    }, each.value.check == null ? {} : {
    # The image's HEALTHCHECK, pointed at this role's port (ECS does not run the image's own).
    healthCheck = {
      command     = ["CMD", "python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('${each.value.check}', timeout=4).status == 200 else 1)"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
  })])
  tags = local.tags
}

resource "aws_ecs_service" "web" {
  name                               = "${var.name}-web"
  cluster                            = aws_ecs_cluster.opsbot.id
  task_definition                    = aws_ecs_task_definition.opsbot["web"].arn
  desired_count                      = var.web_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "opsbot"
    container_port   = local.web_port
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener.https]
  tags       = local.tags
}

resource "aws_ecs_service" "worker" {
  name                               = "${var.name}-worker"
  cluster                            = aws_ecs_cluster.opsbot.id
  task_definition                    = aws_ecs_task_definition.opsbot["worker"].arn
  desired_count                      = var.worker_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 200
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  tags = local.tags
}
