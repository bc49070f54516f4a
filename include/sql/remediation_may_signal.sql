-- Whether this connection's role may terminate other sessions (superuser or pg_signal_backend), and
-- whether it is a superuser: only a superuser may terminate a superuser's session.
select current_user as username,
       coalesce((select rolsuper from pg_roles where rolname = current_user), false) as is_superuser,
       coalesce((select rolsuper from pg_roles where rolname = current_user), false)
           or pg_has_role(current_user, 'pg_signal_backend', 'member') as may_signal
