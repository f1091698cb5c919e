DROP TABLE IF EXISTS refund_requests;
