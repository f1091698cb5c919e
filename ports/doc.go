// Package ports is the boundary between the core and the world: every
// interface a use case needs, kept small. Adapters implement them; hosts wire
// adapters to use cases with fx; testkit holds fakes and contract suites.
//
// Port                  implemented by
//
//	Clock               adapters/system.Clock, testkit/fakes.Clock
//	IDs                 adapters/system.UUIDs (UUIDv7), testkit/fakes.IDs
//	TxRunner            adapters/postgres.DB (retries serialization failures)
//	HealthCheck         postgres.DB, nats bus, redis.Client, inproc stores, oidc.Client
//	UserStore, TenantStore, ProjectStore, MembershipStore
//	                    adapters/postgres
//	PolicyStore         adapters/postgres (cached, LISTEN/NOTIFY invalidation)
//	AccessChanges       adapters/postgres (triggers NOTIFY access_changed), testkit/fakes.AccessChanges
//	AuditLog            adapters/postgres (append-only table)
//	Outbox, OutboxClaimer
//	                    adapters/postgres (FOR UPDATE SKIP LOCKED, LISTEN wake-up)
//	Publisher, Subscriber
//	                    adapters/nats (JetStream, Nats-Msg-Id = event id), testkit/fakes.Bus
//	IdempotencyStore    adapters/postgres
//	TokenStore          adapters/redis (GETDEL), adapters/inproc
//	RateLimiter         adapters/redis (atomic INCR script), adapters/inproc
//	TokenVerifier       adapters/oidc (go-oidc, JWKS, algorithm allowlist)
//	IdentityProvider    adapters/oidc (authorization code + PKCE, refresh, revoke)
//	Mailer              adapters/smtp (wneessen/go-mail; mailpit in dev), testkit/fakes.Mailer
//	NotificationInbox, NotificationFeed, NotificationRecipients,
//	NotificationPreferences, MailQueue, WebhookStore
//	                    adapters/postgres (inbox seq per user, LISTEN wake-ups)
//	WebhookSender       adapters/webhook (Standard Webhooks signatures, SSRF guard)
//	AdminDirectory, PendingUsers, OpsReader
//	                    adapters/postgres
//	ConsumerMonitor     adapters/nats (JetStream consumer lag)
//	ServiceAccountStore, APIKeyStore
//	                    adapters/postgres
//	TokenIssuer         adapters/pki (the platform's ES256 service-account tokens)
//	AuditExporter       adapters/postgres (rows streamed to the caller)
//	SKUStore, NodeStore, AllocationStore, SSHKeyStore, LedgerStore
//	                    adapters/postgres (one live allocation per node: a unique index)
//	BootstrapTokenStore, NodeCertificateStore, SecretStore
//	                    adapters/postgres
//	TaskQueue           adapters/postgres (per-node sequence, LISTEN wake-ups)
//	PaymentStore, RefundStore
//	                    adapters/postgres
//	PaymentProvider     adapters/stripe, adapters/devpay
//	WorkflowEngine      adapters/temporal
//	CertificateAuthority
//	                    adapters/pki (built-in), adapters/stepca
//	SSHCertificateAuthority
//	                    adapters/pki
//	KeySpendReader      adapters/postgres
//	Signer              adapters/keyfile (Ed25519)
//	KMS                 adapters/keyfile, adapters/awskms
//	NodeProber          adapters/netprobe
//	ObjectStore, ObjectPresigner, MultipartUploads
//	                    adapters/s3 (any S3; versitygw in dev and tests),
//	                    testkit/fakes.ObjectStore (serves its presigned URLs)
//	StorageIndex, StorageReservations, StorageSyncs
//	                    adapters/postgres (quota checked under a per-project lock)
package ports
