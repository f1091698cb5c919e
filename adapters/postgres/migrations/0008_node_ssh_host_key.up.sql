-- The node sshd's host public key (authorized_keys format) as the node's own
-- agent last reported it over mTLS. The terminal gateway trusts exactly this
-- key; '' means none reported yet, and such a node is refused.
ALTER TABLE nodes ADD COLUMN ssh_host_key text NOT NULL DEFAULT '';
