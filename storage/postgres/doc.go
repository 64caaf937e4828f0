// Package postgres is c66bot's database on PostgreSQL, for running several
// replicas of the bot on one shared database (C66BOT_DATABASE_URL): bbolt
// lets one process hold its file, so one `c66bot serve` is a single point
// of failure, while every replica on the same PostgreSQL database sees the
// same links, confirmations, locks, deployments followed, outbox and audit
// log, and the leases that give each piece of work one owner.
//
// [Open] returns a [DB] with the same per-kind stores as package storage's
// bbolt DB, with the same method sets and the same behaviour (the contract
// suites of storage/storagetest run against both), plus [DB.Leases] and
// [DB.Budgets], which bbolt keeps in memory: one process holds the file.
// The whole-database operations are storage.DB's too (Ping, WriteError,
// Close, SchemaVersion, CheckKeys, Rekey, SweepExpired,
// ForgetUnopenableLinks), and [DB.Import] is the far end of `c66bot
// migrate`. There is no Backup: back PostgreSQL up with pg_dump (or the
// server's own backups), and keep C66BOT_SECRET_KEY with the dump, since
// the dump holds the sealed values and not the keys.
//
// Every value that carries a secret is sealed exactly as with bbolt, by a
// storage.Sealer (AES-256-GCM) over the record encodings of package
// storage, with the same associated data: a sealed value copied to another
// row does not open. The keys are C66BOT_SECRET_KEY's and nothing else: a
// key file beside one replica would not be beside the others. OAuth
// states, intent ids, webhook secrets and API tokens are never stored,
// only their SHA-256.
//
// # Schema
//
// One table per kind, made by the numbered migrations in migrations/ and
// versioned in schema_migrations (one row per migration applied). Open
// applies what is missing in one transaction under a transaction-level
// advisory lock on the schema, so replicas starting at once apply each
// migration once; it refuses a database at a version this build does not
// know (a newer c66bot migrated it). Keep this list in step with the
// migrations.
//
//	schema_migrations  version, name, applied_at
//	links              identity text <team>:<user> PK; sealed bytea: the link record, associated data = identity
//	login_states       state_sha256 bytea PK; identity text UNIQUE (one pending login a person); sealed bytea, associated data = state_sha256
//	intents            id_sha256 bytea PK; sealed bytea, associated data = id_sha256
//	watches            id bigint PK from sequence watch_ids (spelt as 20 digits: storage.WatchID); stack_uid text;
//	                   done_at timestamptz, NULL while unfinished, else the history sweep's clock;
//	                   sealed bytea, associated data = the 20-digit id;
//	                   UNIQUE (stack_uid) WHERE done_at IS NULL: the stack claim, one unfinished watch a stack
//	locks              (team, stack_uid) PK; record json, not sealed
//	subscriptions      (team, channel, stack_uid) PK, stack_uid '' = all stacks; id text UNIQUE;
//	                   secret_sha256 bytea UNIQUE; record json, not sealed (holds the secret's hash, never the secret)
//	api_tokens         name text PK; sha256 bytea UNIQUE; record json, not sealed (the token's hash, never the token)
//	outbox             id bigint identity PK, arrival order; next_attempt timestamptz; record json, not sealed
//	dedup              key bytea PK (as the caller gave it; it need not be text); expires_at timestamptz
//	audit              seq bigint identity PK; at timestamptz; record json, not sealed
//	leases             key text PK; owner text ('' = released); epoch bigint; expires_at timestamptz; note text
//	budgets            key text PK; tokens double precision; refilled_at timestamptz
//
// Text keys are COLLATE "C", so they order as bbolt's bytes do. The
// records (sealed or json) are package storage's encodings, field for
// field; the columns beside them are copies for finding rows, and the
// record decides. timestamptz keeps microseconds where Go keeps
// nanoseconds: the store's clock is cut to microseconds, so what it stamps
// reads back equal, and a caller's own times keep their nanoseconds in the
// records. Sealed values and hashes are bytea, never text, which cannot
// hold a NUL byte.
//
// # Replicas
//
// Every write that spans rows is one transaction, with the rows it
// decides on locked (SELECT … FOR UPDATE, or one conditional INSERT …
// ON CONFLICT / UPDATE … RETURNING), so of replicas racing for one intent,
// one stack, one lock, one dedup key or one lease exactly one wins. The
// outbox is read, not claimed: the replica that drains it holds a lease.
// Audited writes commit with their entries or fail with
// storage.ErrNotAudited, as with bbolt; audit sequence numbers increase
// with every entry but, unlike bbolt's, leave a gap where a transaction
// rolled back.
package postgres
