select count(*) from {relation}
