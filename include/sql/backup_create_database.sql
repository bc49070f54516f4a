create database {database} template template0
