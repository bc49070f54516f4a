"""Recovery: put lost warehouse rows back without destroying the rest (recover_bronze), and prove that the
backups restore (restore_drill). Actions layer: it reads Kafka through the kafka family's hooks and the
backups through backup/'s manifest and verification code."""
