-- The store's high-water mark: the highest global position no open append can still fall below.
-- Appends hold the store's append lock in SHARE mode until they commit (they do not wait for one
-- another); this takes it exclusively for an instant, so every append that holds a position has
-- committed or rolled back when the position is read (a fresh snapshot: a VOLATILE function's
-- statements each take one), and every later append takes a higher one. It waits at most
-- `wait_ms` for the open appends to end (new appends queue behind it meanwhile), else returns
-- NULL: the caller reads nothing new this time. Outside a transaction the lock is released as the
-- statement ends; inside one, when it ends.
CREATE FUNCTION events_high_water(wait_ms integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    high bigint;
    timeout text := current_setting('lock_timeout');
BEGIN
    IF NOT pg_try_advisory_xact_lock(7301002, hashtext(current_schema())) THEN
        IF wait_ms <= 0 THEN
            RETURN NULL;
        END IF;
        PERFORM set_config('lock_timeout', wait_ms || 'ms', true);
        BEGIN
            PERFORM pg_advisory_xact_lock(7301002, hashtext(current_schema()));
        EXCEPTION WHEN lock_not_available THEN
            PERFORM set_config('lock_timeout', timeout, true);
            RETURN NULL;
        END;
        PERFORM set_config('lock_timeout', timeout, true);
    END IF;
    SELECT coalesce(max(global_position), 0) INTO high FROM events;
    RETURN high;
END $$;
