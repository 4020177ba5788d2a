-- Every instance caches validated sessions. When a change ends a session or
-- changes what it resolves to, the database itself tells every instance, in
-- the transaction that makes the change: NOTIFY is delivered when (and only
-- if) that transaction commits, whoever made it (another instance, the
-- command line, BetterAuth on the same database, psql).
--
-- Payloads on channel "warden_invalidate" (see warden-core's invalidate.rs):
--   s:<sha-256 hex of the token>  one session (the cache's key; never the token)
--   u:<user id>                    every session of the user
--
-- Sessions: deleted, or moved to another user, taken over for an
-- impersonation, or shortened. Sliding refresh (a later expiry) and token
-- adoption (a BetterAuth token replaced by its hash: the key stays the
-- same) are not announced. Rows long expired (the periodic clean-up) are
-- not announced either: no cache holds them.
CREATE OR REPLACE FUNCTION "warden_notify_session"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('warden_invalidate', 's:' || CASE
    WHEN length(OLD."token") = 64 THEN lower(OLD."token")
    ELSE encode(sha256(convert_to(OLD."token", 'UTF8')), 'hex')
  END);
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION "warden_notify_user"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('warden_invalidate', 'u:' || OLD."id");
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS "warden_session_deleted" ON "session";
CREATE TRIGGER "warden_session_deleted" AFTER DELETE ON "session"
FOR EACH ROW WHEN (OLD."expiresAt" > now() - interval '1 day')
EXECUTE FUNCTION "warden_notify_session"();

DROP TRIGGER IF EXISTS "warden_session_changed" ON "session";
CREATE TRIGGER "warden_session_changed" AFTER UPDATE ON "session"
FOR EACH ROW WHEN (
  OLD."userId" IS DISTINCT FROM NEW."userId"
  OR OLD."impersonatedBy" IS DISTINCT FROM NEW."impersonatedBy"
  OR NEW."expiresAt" < OLD."expiresAt"
)
EXECUTE FUNCTION "warden_notify_session"();

-- Users: any change to the row (name, email, verification, role, ban,
-- two-factor...) or its deletion (which also deletes the sessions).
DROP TRIGGER IF EXISTS "warden_user_changed" ON "user";
CREATE TRIGGER "warden_user_changed" AFTER UPDATE ON "user"
FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
EXECUTE FUNCTION "warden_notify_user"();

DROP TRIGGER IF EXISTS "warden_user_deleted" ON "user";
CREATE TRIGGER "warden_user_deleted" AFTER DELETE ON "user"
FOR EACH ROW EXECUTE FUNCTION "warden_notify_user"();
