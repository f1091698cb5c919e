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
//	Mailer              testkit/fakes.Mailer (SMTP adapter: notification work)
//
// Ports declared for the next capabilities, adapters arriving with them:
//
//	AllocationStore     compute path (postgres; one live allocation per node)
//	LedgerStore, PaymentStore, PaymentProvider
//	                    money path (postgres; stripe and the dev provider)
//	WorkflowEngine      compute path (temporal)
//	ObjectStore         storage (s3, localfs)
//	CertificateAuthority, Signer, KMS
//	                    node agent and encryption envelope (built-in CA, step-ca,
//	                    local key file, AWS KMS)
package ports
