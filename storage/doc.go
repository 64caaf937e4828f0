// Package storage is c66bot's database. [Open] returns a [DB]: the bbolt
// file, the [Sealer] that encrypts its secrets, the schema and its
// migrations, and what concerns the file as a whole (Close, Ping,
// WriteError, Backup, SchemaVersion, Rekey, CheckKeys,
// ForgetUnopenableLinks, SweepExpired). The records are kept by small
// per-kind stores that hang off the DB, as containerd's metadata store
// does, each with a short method set that does not repeat its kind:
//
//	DB.Links          LinkStore          each Slack person's Cloud 66 link (Link)
//	DB.Logins         LoginStore         OAuth logins started, not finished (PendingLogin)
//	DB.Intents        IntentStore        pending confirmations and approvals (Intent)
//	DB.Watches        WatchStore         deployments followed to the end, and their history (Watch)
//	DB.Locks          LockStore          people's holds on stacks (Lock)
//	DB.Subscriptions  SubscriptionStore  channels following stacks' events (Subscription)
//	DB.Outbox         OutboxStore        events accepted but not yet posted (OutboxItem)
//	DB.Dedup          DedupStore         "already handled" marks that make retries harmless
//	DB.Audit          AuditStore         the append-only audit log (AuditEntry)
//	DB.APITokens      APITokenStore      bearer tokens of the bot's HTTP API (APIToken)
//
// The stores share the DB's transactions, so a write that spans kinds is
// still one transaction: the changes that take trailing audit entries
// (WatchStore.Start and Save, LockStore.Acquire, LinkStore.Save,
// SubscriptionStore.Subscribe, APITokenStore.Create, …) commit with them or
// not at all, failing with [ErrNotAudited]; OutboxStore.MarkDone records
// its dedup key with the delivery. Consumers declare the small interfaces
// they use over these stores (over the DB only for whole-file operations),
// and the method sets carry only this package's types, never bbolt's, so
// another backend (PostgreSQL, for replicas) can implement them kind by
// kind. The behaviour every backend must keep is the contract in
// storage/storagetest, which this package's tests run against bbolt.
// What another backend shares with this one is exported: the record
// encodings, the secrets handed out and their hashes, and the input checks
// (codec.go), and the rules of each kind around a transaction (rules.go),
// so storage/postgres writes the same bytes and decides alike; [DB.Export]
// hands the file's records out for `c66bot migrate`.
//
// A watch's state is a [WatchState], spelt on disk as its constants are
// (starting, queued, deploying, then succeeded, failed, cancelled or
// unknown, the final ones); callers compare with the constants.
//
// bbolt does not encrypt anything, so every value that carries a secret (OAuth
// tokens, PKCE verifiers, Slack response_url values) is sealed with
// AES-256-GCM before it is written (see [Sealer]). The associated data of each
// seal is the bbolt key the value lives under, so a sealed value copied under
// another key, for example another person's identity, fails to open. Raw OAuth
// state strings, intent ids, webhook secrets and API tokens are never stored;
// only their SHA-256 is. Locks, audit entries, subscriptions, API token
// records and outbox items hold nothing secret and are plain JSON.
//
// # Schema
//
// Keep this tree in step with the migrations in migrations.go: every schema
// change adds a migration and updates this comment.
//
//	meta                            bucket
//	  schema_version                uint64, big-endian: number of migrations applied
//	links                           bucket
//	  <team>:<user>                 sealed linkRecord JSON; associated data = the key
//	login_states                    bucket
//	  sha256(state)                 32 bytes -> sealed loginRecord JSON; associated data = the key
//	login_by_identity               bucket
//	  <team>:<user>                 sha256(state) of that person's latest pending login
//	dedup                           bucket
//	  <caller's key>                expiry, Unix nanoseconds as uint64 big-endian
//	intents                         bucket (schema v2)
//	  sha256(intent id)             32 bytes -> sealed intentRecord JSON; associated data = the key
//	locks                           bucket (schema v2)
//	  <team>:<stack uid>            lockRecord JSON, not sealed
//	watches                         bucket (schema v2); its sequence numbers the watches
//	  <watch id>                    20-digit zero-padded decimal -> sealed watchRecord JSON; associated data = the key
//	watches_active                  bucket (schema v2): the unfinished watches
//	  <watch id>                    stack uid the watch holds
//	watch_by_stack                  bucket (schema v2): the stack claims, inverse of watches_active
//	  <stack uid>                   watch id
//	watches_done                    bucket (schema v2): finished watches, for the history sweep
//	  <watch id>                    finish time, Unix nanoseconds as uint64 big-endian
//	audit                           bucket (schema v2); its sequence numbers the entries
//	  <seq>                         uint64 big-endian -> auditRecord JSON, not sealed
//	subscriptions                   bucket (schema v3)
//	  <team>:<channel>:<stack uid>  subscriptionRecord JSON, not sealed; stack uid "" = all stacks
//	subscription_ids                bucket (schema v3)
//	  <subscription id>             <team>:<channel>:<stack uid> of that subscription
//	subscription_secrets            bucket (schema v3)
//	  sha256(webhook secret)        32 bytes -> subscription id
//	api_tokens                      bucket (schema v3)
//	  <token name>                  apiTokenRecord JSON, not sealed; holds sha256(token), never the token
//	api_token_hashes                bucket (schema v3)
//	  sha256(token)                 32 bytes -> token name
//	outbox                          bucket (schema v3); its sequence numbers the items
//	  <id>                          uint64 big-endian -> outboxRecord JSON, not sealed
//
// <team>:<user> is [Identity.Key]: the enterprise id (or team id when the
// workspace is not part of an Enterprise Grid) and the Slack user id. In
// <team>:<stack uid> the team is [Lock.Team], which never contains ':', so
// the first ':' splits the key and "<team>:" is a prefix only of that
// team's locks. Likewise neither team nor channel of a subscription contains
// ':', so "<team>:<channel>:" is a prefix only of that channel's
// subscriptions.
//
// A sealed value is
//
//	version (1 byte, = 1) | key id (4 bytes) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// where key id is the first 4 bytes of SHA-256 of the AES key, so old values
// still open after a new key is put in front during rotation. Every JSON
// record, sealed or not, starts with a "v" field (currently 1) so the record
// layout can change without a schema migration. Field-by-field layouts are in
// encoding.go.
//
// The whole file is locked by one process at a time; [Open] gives up after
// [Options.Timeout] with [ErrLocked] rather than waiting forever.
package storage

// Bucket and key names. They are variables only because bbolt takes []byte;
// nothing assigns to them.
var (
	bucketMeta            = []byte("meta")
	bucketLinks           = []byte("links")
	bucketLoginStates     = []byte("login_states")
	bucketLoginByIdentity = []byte("login_by_identity")
	bucketDedup           = []byte("dedup")
	bucketIntents         = []byte("intents")
	bucketLocks           = []byte("locks")
	bucketWatches         = []byte("watches")
	bucketWatchesActive   = []byte("watches_active")
	bucketWatchByStack    = []byte("watch_by_stack")
	bucketWatchesDone     = []byte("watches_done")
	bucketAudit           = []byte("audit")
	bucketSubscriptions   = []byte("subscriptions")
	bucketSubscriptionIDs = []byte("subscription_ids")
	bucketSubSecrets      = []byte("subscription_secrets")
	bucketAPITokens       = []byte("api_tokens")
	bucketAPITokenHashes  = []byte("api_token_hashes")
	bucketOutbox          = []byte("outbox")

	keySchemaVersion = []byte("schema_version")
)
