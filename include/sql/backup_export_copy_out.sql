copy (select * from {relation}) to stdout
