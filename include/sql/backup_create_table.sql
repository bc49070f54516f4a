create table {relation} ({columns})
