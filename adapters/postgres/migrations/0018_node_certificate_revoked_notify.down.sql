DROP TRIGGER nodes_retired ON nodes;
DROP FUNCTION nodes_notify_retired();
DROP TRIGGER node_certificates_revoked ON node_certificates;
DROP FUNCTION node_certificates_notify_revoked();
