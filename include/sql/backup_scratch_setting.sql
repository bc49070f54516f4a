alter database {database} set {setting} to {value}
