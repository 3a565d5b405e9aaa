-- Signed heads of the audit chain: (seq, hash) signed with the site's Ed25519 key. A copy
-- exported off the box proves later that the chain still holds those rows, so truncating
-- its tail or recomputing it wholesale is found by `offsite audit verify`.
CREATE TABLE audit_checkpoints (
    seq bigint PRIMARY KEY,
    hash text NOT NULL,
    at timestamptz NOT NULL,
    public_key text NOT NULL,
    signature text NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
