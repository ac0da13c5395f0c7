-- Who holds a claimed row's lease: a sender's holder id, also the key of a session advisory
-- lock it holds while it works on its batch. When that session is gone (the process died),
-- the row is free at once; otherwise the lease (seconds, renewed) runs out.
ALTER TABLE deliveries ADD COLUMN lease_holder integer;
