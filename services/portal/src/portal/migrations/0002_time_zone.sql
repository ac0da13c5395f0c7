-- where a person's pages show instants: an IANA zone from their profile (NULL: UTC)
ALTER TABLE people ADD COLUMN time_zone text;
