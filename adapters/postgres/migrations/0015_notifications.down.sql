ALTER TABLE tenant_billing_state DROP COLUMN IF EXISTS release_warned_at;
DROP TABLE IF EXISTS webhook_attempts;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
DROP TABLE IF EXISTS notification_emails;
DROP TABLE IF EXISTS notification_preferences;
DROP TRIGGER IF EXISTS notifications_notify ON notifications;
DROP TABLE IF EXISTS notifications;
DROP FUNCTION IF EXISTS notify_notification();
