-- Forget a row that is healthy and no longer reported (nothing open, nothing owed).
delete from {ops}.alert_state where check_name = %(check_name)s and subject = %(subject)s
