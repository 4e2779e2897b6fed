"""Operations: alert emails, health monitor, backups, logs."""
