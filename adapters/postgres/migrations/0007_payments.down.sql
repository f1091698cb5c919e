DROP TABLE IF EXISTS payment_events;
DROP TABLE IF EXISTS payment_customers;
DROP TABLE IF EXISTS payment_sessions;
