# Aurora PostgreSQL Serverless v2. The master password is managed by RDS in
# Secrets Manager (never in state); OPSBOT_DATABASE_URL is yours to set.
resource "aws_db_subnet_group" "opsbot" {
  name       = var.name
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_rds_cluster_parameter_group" "opsbot" {
  name   = "${var.name}-aurora-postgresql16"
  family = "aurora-postgresql16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement" # schema changes only: statements with values could carry secrets
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  tags = local.tags
}

resource "aws_rds_cluster" "opsbot" {
  #checkov:skip=CKV2_AWS_8:Aurora keeps continuous backups for backup_retention_period; an AWS Backup plan is the estate's choice.
  cluster_identifier                  = var.name
  engine                              = "aurora-postgresql"
  engine_mode                         = "provisioned"
  engine_version                      = "16.4"
  database_name                       = "opsbot"
  master_username                     = "opsbot"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.opsbot.arn
  db_subnet_group_name                = aws_db_subnet_group.opsbot.name
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.opsbot.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.opsbot.arn
  iam_database_authentication_enabled = true
  deletion_protection                 = true
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  final_snapshot_identifier           = "${var.name}-final"
  serverlessv2_scaling_configuration {
    min_capacity = var.db_min_capacity
    max_capacity = var.db_max_capacity
  }
  tags = local.tags
}

resource "aws_rds_cluster_instance" "opsbot" {
  count                                 = 2
  identifier                            = "${var.name}-${count.index}"
  cluster_identifier                    = aws_rds_cluster.opsbot.id
  instance_class                        = "db.serverless"
  engine                                = aws_rds_cluster.opsbot.engine
  engine_version                        = aws_rds_cluster.opsbot.engine_version
  db_subnet_group_name                  = aws_db_subnet_group.opsbot.name
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.opsbot.arn
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  tags                                  = local.tags
}
