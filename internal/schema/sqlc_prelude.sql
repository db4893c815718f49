-- Read by sqlc only (see sqlc.yaml): migrations run inside a schema that
-- migrations.Up creates first, so they never create it themselves.
CREATE SCHEMA pgq;
