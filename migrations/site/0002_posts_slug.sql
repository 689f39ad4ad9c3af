-- Unique slugs are looked up by equality (batches of candidates), which this index serves on SQLite and
-- PostgreSQL alike; the earlier `LIKE 'slug-%'` scan grew with the table.
CREATE INDEX posts_slug ON posts (slug)
;
