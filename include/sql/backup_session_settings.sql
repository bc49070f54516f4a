-- The settings that decide how values read and print as text in this session (COPY, ::text, the
-- digests, a view that casts a timestamptz to text): a restore must compare under the same ones.
select s.name, current_setting(s.name) as setting from unnest(%(names)s::text[]) as s(name)
