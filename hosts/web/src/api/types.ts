import type { components } from "./schema.gen";
type S = components["schemas"];
export type Me = S["Me"];
export type Project = S["Project"];
export type Member = S["Member"];
export type SKU = S["SKU"];
export type Node = S["Node"];
export type Allocation = S["Allocation"];
export type AllocationState = S["AllocationState"];
export type AllocationPage = S["AllocationPage"];
export type SSHKey = S["SSHKey"];
export type BillingBalance = S["BillingBalance"];
export type LedgerEntry = S["LedgerEntry"];
export type LedgerPage = S["LedgerPage"];
export type UsageRecord = S["UsageRecord"];
export type UsagePage = S["UsagePage"];
export type AdminNode = S["AdminNode"];
export type NodeState = S["NodeState"];
export type NodeRegistration = S["NodeRegistration"];
export type ProbeResult = S["ProbeResult"];
export type Policy = S["Policy"];
export type AuditEvent = S["AuditEvent"];
export type AuditLogPage = S["AuditLogPage"];
export type PaymentSession = S["PaymentSession"];
export type PaymentSessionStatus = S["PaymentSessionStatus"];
export type PaymentSessionPage = S["PaymentSessionPage"];
export type TerminalToken = S["TerminalToken"];
export type CreateAllocationRequest = S["CreateAllocationRequest"];
export type RegisterNodeRequest = S["RegisterNodeRequest"];

export const ALLOCATION_STATES: AllocationState[] = [
  "requested",
  "provisioning",
  "active",
  "releasing",
  "released",
  "failed",
  "release_failed",
];
export const LIVE_STATES: AllocationState[] = [
  "requested",
  "provisioning",
  "active",
  "releasing",
  "release_failed",
];
export const TRANSITIONAL_STATES: AllocationState[] = ["requested", "provisioning", "releasing"];

export type StorageEntry = S["StorageEntry"];
export type StorageListing = S["StorageListing"];
export type StorageUsage = S["StorageUsage"];
export type StoragePresigned = S["StoragePresigned"];
export type StorageSignedRequest = S["StorageSignedRequest"];
export type Notification = S["Notification"];
export type NotificationKind = S["NotificationKind"];
export type NotificationPage = S["NotificationPage"];
export type NotificationPreferences = S["NotificationPreferences"];
export type AdminUser = S["AdminUser"];
export type AdminUserPage = S["AdminUserPage"];
export type AdminUserDetail = S["AdminUserDetail"];
export type AdminCreateUserRequest = S["AdminCreateUserRequest"];
export type AdminTenant = S["AdminTenant"];
export type AdminTenantPage = S["AdminTenantPage"];
export type AdminTenantDetail = S["AdminTenantDetail"];
export type TenantPolicy = S["TenantPolicy"];
export type OpsView = S["OpsView"];
export type OpsEntry = S["OpsEntry"];
export type Runbook = S["Runbook"];
export type FailedEvent = S["FailedEvent"];
export type RefundRequest = S["RefundRequest"];
export type RefundRequestPage = S["RefundRequestPage"];
export type RefundRequestStatus = RefundRequest["status"];
export type WebhookEndpoint = S["WebhookEndpoint"];
export type WebhookEventType = S["WebhookEventType"];
export type CreatedWebhookEndpoint = S["CreatedWebhookEndpoint"];
export type CreateWebhookEndpointRequest = S["CreateWebhookEndpointRequest"];
export type UpdateWebhookEndpointRequest = S["UpdateWebhookEndpointRequest"];
export type WebhookDelivery = S["WebhookDelivery"];
export type WebhookDeliveryStatus = WebhookDelivery["status"];
export type WebhookDeliveryPage = S["WebhookDeliveryPage"];
export type WebhookAttempt = S["WebhookAttempt"];
export type CredentialScope = S["CredentialScope"];
export type APIKey = S["APIKey"];
export type CreateAPIKeyRequest = S["CreateAPIKeyRequest"];
export type CreatedAPIKey = S["CreatedAPIKey"];
export type ServiceAccount = S["ServiceAccount"];
export type ServiceAccountRole = ServiceAccount["role"];
export type ServiceAccountCredential = S["ServiceAccountCredential"];
export type CreateServiceAccountRequest = S["CreateServiceAccountRequest"];
export type CreateCredentialRequest = S["CreateCredentialRequest"];
export type CreatedCredential = S["CreatedCredential"];
